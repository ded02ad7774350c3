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
  // The Activity chart (uPlot, bundled from npm): one line per group, drawn from the JSON data
  // block the page carries; the tables below hold the same figures for everyone else.
  var COLOURS = ["#0b57d0", "#1e6b35", "#a3470b", "#6f3bb3", "#a1142e", "#5f6368"];
  function chart() {
    var target = document.getElementById("activity-chart");
    var source = document.getElementById("activity-data");
    if (!target || !source || !window.uPlot || target.dataset.drawn) return;
    target.dataset.drawn = "1";
    var data;
    try { data = JSON.parse(source.textContent); } catch (e) { return; }
    var series = [{}], columns = [data.x];
    data.series.forEach(function (s, i) {
      var colour = COLOURS[i % COLOURS.length];
      series.push({ label: s.label, stroke: colour, width: 2, points: { show: data.x.length < 60 } });
      columns.push(s.values);
    });
    var width = Math.max(280, Math.min(target.clientWidth || 600, 1000));
    new window.uPlot({
      width: width,
      height: 240,
      tzDate: function (ts) { return window.uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); },
      series: series,
      axes: [{}, { label: data.unit }]
    }, columns, target);
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
