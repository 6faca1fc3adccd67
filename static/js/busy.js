/* Forms that take a while: <form data-busy="Sending…">. On submit the form's submit buttons
   are disabled (a second click sends nothing more) and the pressed one says the label, until
   the answer replaces the page. A file, never inline, so a strict Content-Security-Policy
   allows it. */
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute || !form.hasAttribute("data-busy") || event.defaultPrevented) { return; }
    var pressed = event.submitter || form.querySelector("button[type=submit], button:not([type])");
    // After this event: a button disabled now would leave its name and value out of the request.
    setTimeout(function () {
      form.setAttribute("aria-busy", "true");
      Array.prototype.forEach.call(form.querySelectorAll("button[type=submit], button:not([type])"),
        function (button) { button.disabled = true; });
      if (pressed) {
        pressed.setAttribute("data-label", pressed.textContent);
        pressed.textContent = form.getAttribute("data-busy");
      }
    }, 0);
  });

  // Back from the browser's page cache: the page is shown as it was left, buttons disabled.
  window.addEventListener("pageshow", function (event) {
    if (!event.persisted) { return; }
    Array.prototype.forEach.call(document.querySelectorAll("form[aria-busy]"), function (form) {
      form.removeAttribute("aria-busy");
      Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
        button.disabled = false;
        if (button.hasAttribute("data-label")) { button.textContent = button.getAttribute("data-label"); }
      });
    });
  });
})();
