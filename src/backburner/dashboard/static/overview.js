// Overview charts, drawn by uPlot (static/uplot.iife.min.js).
// Live: every 2 s, the state counters; the growth of "succeeded" and
// "failed" between two answers, per second. History: per hour or day,
// from /api/history when storage keeps those totals.
(function () {
  "use strict";
  var POINTS = 90;
  var INTERVAL = 2000;

  function color(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function widthOf(element) {
    return Math.max(element.clientWidth, 300);
  }

  function options(element, title, seriesNames, bars, xRange) {
    var axis = { stroke: color("--muted"), grid: { stroke: color("--line"), width: 1 }, ticks: { stroke: color("--line") } };
    return {
      width: widthOf(element),
      height: 220,
      title: title,
      scales: { x: { time: true, range: xRange }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [axis, axis],
      series: [
        {},
        serie(seriesNames[0], color("--ok"), bars, 0),
        serie(seriesNames[1], color("--bad"), bars, 1)
      ]
    };
  }

  function serie(label, stroke, bars, index) {
    var drawn = { label: label, stroke: stroke, width: 2, fill: "transparent" };
    if (bars) {
      // Two bars side by side in each period.
      drawn.paths = uPlot.paths.bars({ size: [0.35, 40], align: index === 0 ? -1 : 1 });
      drawn.fill = stroke;
      drawn.width = 0;
      drawn.points = { show: false };
    }
    return drawn;
  }

  function liveChart(element) {
    var source = element.getAttribute("data-source");
    var times = [], succeeded = [], failed = [];
    var previous = null;
    var chart = null;

    // The x axis always shows the last three minutes, even before the
    // first points arrive.
    function lastMinutes() {
      var end = times.length ? times[times.length - 1] : Date.now() / 1000;
      return [end - POINTS * INTERVAL / 1000, end];
    }

    function draw() {
      if (chart) { chart.destroy(); }
      chart = new uPlot(options(element, "", ["succeeded / s", "failed / s"], false, lastMinutes), [times, succeeded, failed], element);
    }

    function updateCards(states) {
      var counts = document.querySelectorAll("#counts .count[data-state]");
      for (var i = 0; i < counts.length; i++) {
        var state = counts[i].getAttribute("data-state");
        if (state in states) { counts[i].textContent = String(states[state]); }
      }
    }

    function tick() {
      fetch(source, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          updateCards(data.states);
          if (previous !== null) {
            var seconds = Math.max(data.at - previous.at, 0.001);
            times.push(data.at);
            succeeded.push(Math.max(data.states.succeeded - previous.states.succeeded, 0) / seconds);
            failed.push(Math.max(data.states.failed - previous.states.failed, 0) / seconds);
            if (times.length > POINTS) { times.shift(); succeeded.shift(); failed.shift(); }
            chart.setData([times, succeeded, failed]);
          }
          previous = data;
        })
        .catch(function () { /* the next tick tries again */ });
    }

    draw();
    element.setAttribute("data-drawn", "true");
    tick();
    window.setInterval(tick, INTERVAL);
    document.addEventListener("backburner:theme", draw);
    window.addEventListener("resize", function () { chart.setSize({ width: widthOf(element), height: 220 }); });
  }

  function historyChart(element) {
    var source = element.getAttribute("data-source");
    var status = document.getElementById("history-status");
    var buttons = document.querySelectorAll("#history-units button");
    var chart = null;
    var unit = "hour";
    var data = null;

    // Half a period of room on each side, so the first and last bars
    // are drawn whole.
    function padded(u, min, max) {
      var step = data && data[0].length > 1 ? data[0][1] - data[0][0] : 3600;
      return [min - step / 2, max + step / 2];
    }

    function draw() {
      if (chart) { chart.destroy(); chart = null; }
      if (!data) { return; }
      chart = new uPlot(options(element, "", ["succeeded", "failed"], true, padded), data, element);
    }

    function load() {
      fetch(source + "?unit=" + unit, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (answer) {
          if (!answer || !answer.available) {
            data = null;
            element.hidden = true;
            status.textContent = "No history yet: the storage does not keep totals per hour and day (see docs/dashboard.md).";
            draw();
            return;
          }
          var t = [], s = [], f = [];
          for (var i = 0; i < answer.buckets.length; i++) {
            t.push(answer.buckets[i].start);
            s.push(answer.buckets[i].succeeded);
            f.push(answer.buckets[i].failed);
          }
          data = [t, s, f];
          element.hidden = false;
          status.textContent = "Succeeded and failed jobs per " + unit + ".";
          draw();
        })
        .catch(function () { status.textContent = "The history could not be loaded."; });
    }

    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        unit = event.currentTarget.getAttribute("data-unit");
        for (var j = 0; j < buttons.length; j++) {
          buttons[j].setAttribute("aria-pressed", String(buttons[j] === event.currentTarget));
        }
        load();
      });
    }
    document.addEventListener("backburner:theme", draw);
    load();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var live = document.getElementById("live-chart");
    if (live) { liveChart(live); }
    var history = document.getElementById("history-chart");
    if (history) { historyChart(history); }
  });
})();
