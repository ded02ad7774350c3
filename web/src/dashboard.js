// Infron dashboard: small enhancements only; every page works without this file.
// Loaded from /assets/ (Content-Security-Policy: script-src 'self'): no inline scripts.
(function () {
  "use strict";
  function enhance(root) {
    // Copy buttons start hidden (they need JavaScript); show them and wire them up.
    root.querySelectorAll("button[data-copy]").forEach(function (button) {
      if (button.dataset.wired) return;
      button.dataset.wired = "1";
      button.hidden = false;
      button.addEventListener("click", function () {
        var source = document.getElementById(button.dataset.copy);
        if (!source) return;
        var text = source.textContent.trim();
        var done = function () {
          button.textContent = "Copied";
          var status = document.getElementById(button.dataset.copy + "-status");
          if (status) status.textContent = "The key was copied to the clipboard.";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { select(source); });
        } else {
          select(source);
        }
      });
    });
    // Forms that destroy something ask first.
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      if (form.dataset.wired) return;
      form.dataset.wired = "1";
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }
  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });
})();
