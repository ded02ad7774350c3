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
  // The Activity chart (uPlot, bundled from npm): drawn from the per-day table's rows, which
  // stay as the accessible version of the same figures.
  function chart() {
    var target = document.getElementById("activity-chart");
    if (!target || !window.uPlot || target.dataset.drawn) return;
    target.dataset.drawn = "1";
    var rows = Array.prototype.slice.call(document.querySelectorAll("#activity-days tr[data-day]"));
    rows.sort(function (a, b) { return a.dataset.day < b.dataset.day ? -1 : 1; });
    var xs = [], spend = [], requests = [];
    rows.forEach(function (r) {
      xs.push(Date.parse(r.dataset.day + "T00:00:00Z") / 1000);
      spend.push(parseFloat(r.dataset.spend) || 0);
      requests.push(parseInt(r.dataset.requests, 10) || 0);
    });
    var width = Math.max(280, Math.min(target.clientWidth || 600, 1000));
    new window.uPlot({
      width: width,
      height: 220,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      series: [
        {},
        { label: "Spend (USD)", stroke: "#0b57d0", fill: "rgba(11, 87, 208, 0.12)", paths: window.uPlot.paths.bars({ size: [0.6, 40] }) },
        { label: "Requests", stroke: "#1e6b35", scale: "n" }
      ],
      axes: [{}, { label: "USD" }, { side: 1, scale: "n", label: "requests", grid: { show: false } }]
    }, [xs, spend, requests], target);
  }
  function select(node) {
    var range = document.createRange();
    range.selectNodeContents(node);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  // uPlot loads with `defer` too; draw once everything has run.
  window.addEventListener("load", chart);
  document.addEventListener("htmx:afterSwap", function (event) { enhance(event.target); });
})();
