/* The add-site form proposes the document root as the domains are typed: the placeholder of
   <input data-root-home="/home/alice"> becomes <home>/<first domain>, the directory
   panel.security.homes.default_document_root gives a site whose root is left empty (a wildcard's
   is _wildcard.<domain>, an IDN's its punycode). Loaded as a file: no inline script under
   the CSP. */
(function () {
  "use strict";

  var SEPARATORS = /[\s,，、]+/;  // as panel.hosting.forms.split_domains

  function directoryFor(text) {
    var first = (text.split(SEPARATORS).filter(Boolean)[0] || "").toLowerCase().replace(/\.$/, "");
    var wildcard = first.indexOf("*.") === 0;
    var base = wildcard ? first.slice(2) : first;
    if (base.indexOf(".") < 1) { return ""; }
    try {
      base = new URL("http://" + base + "/").hostname;  // the browser's IDN to punycode
    } catch (e) {
      return "";
    }
    return (wildcard ? "_wildcard." : "") + base;
  }

  function propose(domains) {
    if (!domains.hasAttribute || !domains.hasAttribute("data-proposes-root") || !domains.form) {
      return;
    }
    var root = domains.form.querySelector("[data-root-home]");
    if (!root) { return; }
    root.placeholder = root.getAttribute("data-root-home") + "/" + directoryFor(domains.value);
  }

  document.addEventListener("input", function (event) { propose(event.target); });
  // Domains already there (the form shown again with an error, the browser's back button).
  document.querySelectorAll("[data-proposes-root]").forEach(propose);
})();
