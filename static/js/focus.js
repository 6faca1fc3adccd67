/* A form marked data-focus-first gets the keyboard when its page opens: on its first field with
   an error, else on its first field. Nothing moves when the user has already focused something,
   or the URL names a place in the page. A file, not inline script: the Content-Security-Policy. */
(function () {
  "use strict";

  var FIELDS = "input:not([type=hidden]):not([type=submit]):not([type=button]):not([disabled])," +
    "select:not([disabled]),textarea:not([disabled])";

  function visible(element) {
    return element.offsetParent !== null || element.getClientRects().length > 0;
  }

  function firstField(form) {
    var preferred = form.querySelectorAll(".field--invalid, [aria-invalid=true]");
    var places = preferred.length ? preferred : [form];
    for (var i = 0; i < places.length; i++) {
      var candidates = places[i].matches(FIELDS) ? [places[i]] : places[i].querySelectorAll(FIELDS);
      for (var j = 0; j < candidates.length; j++) {
        if (visible(candidates[j]) && !candidates[j].readOnly) { return candidates[j]; }
      }
    }
    return null;
  }

  function focusFirstField() {
    if (window.location.hash) { return; }
    if (document.activeElement && document.activeElement !== document.body) { return; }
    var form = document.querySelector("form[data-focus-first]");
    var field = form && firstField(form);
    if (field) { field.focus(); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", focusFirstField);
  } else {
    focusFirstField();
  }
})();
