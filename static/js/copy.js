/* Copy buttons: <button type="button" data-copy="text" data-copied="Copied">Copy</button>.
   One listener on the document, so buttons in HTML that htmx swaps in later work too.
   Loaded as a file (never inline) so a strict Content-Security-Policy allows it. */
(function () {
  "use strict";

  function fallbackCopy(text) {
    // navigator.clipboard needs a secure context (HTTPS or localhost); elsewhere, the old way.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return fallbackCopy(text); });
    }
    return fallbackCopy(text);
  }

  function flash(button, label) {
    if (!label) { return; }
    if (!button.hasAttribute("data-label")) { button.setAttribute("data-label", button.textContent); }
    button.textContent = label;
    clearTimeout(button._copyTimer);
    button._copyTimer = setTimeout(function () { button.textContent = button.getAttribute("data-label"); }, 1500);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-copy]") : null;
    if (!button) { return; }
    event.preventDefault();
    copy(button.getAttribute("data-copy")).then(
      function () { flash(button, button.getAttribute("data-copied")); },
      function () { flash(button, button.getAttribute("data-copy-failed")); }
    );
  });
})();
