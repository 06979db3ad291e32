// Behaviour shared by the pages: select all, confirm before delete, and
// live progress of processing jobs. Every page works without it.
(function () {
  "use strict";

  function selectAll() {
    var all = document.getElementById("select-all");
    if (!all) { return; }
    all.addEventListener("change", function () {
      var boxes = document.querySelectorAll('input[type="checkbox"][name="job"]');
      for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
    });
  }

  function confirmations() {
    var forms = document.querySelectorAll("form.confirm");
    for (var i = 0; i < forms.length; i++) {
      forms[i].addEventListener("submit", function (event) {
        var question = event.currentTarget.getAttribute("data-confirm");
        if (question && !window.confirm(question)) { event.preventDefault(); }
      });
    }
    var bulk = document.getElementById("selection");
    if (bulk) {
      bulk.addEventListener("submit", function (event) {
        var chosen = document.querySelectorAll('input[name="job"]:checked').length;
        if (chosen === 0) { event.preventDefault(); return; }
        var action = event.submitter ? event.submitter.value : "";
        if (action === "delete" && !window.confirm("Delete " + chosen + " jobs?")) {
          event.preventDefault();
        }
      });
    }
  }

  function formatSeconds(seconds) {
    if (seconds < 60) { return seconds.toFixed(1) + " s"; }
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) { return minutes + " min " + Math.floor(seconds % 60) + " s"; }
    return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
  }

  function liveProgress() {
    var table = document.querySelector("table[data-progress]");
    if (!table) { return; }
    var rows = table.querySelectorAll("tr[data-job]");
    if (rows.length === 0) { return; }
    var query = [];
    for (var i = 0; i < rows.length; i++) {
      query.push("id=" + encodeURIComponent(rows[i].getAttribute("data-job")));
    }
    var url = table.getAttribute("data-progress") + "?" + query.join("&");

    function refresh() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (!data) { return; }
          for (var i = 0; i < rows.length; i++) {
            var row = rows[i];
            var job = data.jobs[row.getAttribute("data-job")];
            if (!job || job.state !== "processing") { row.classList.add("gone"); continue; }
            var bar = row.querySelector("progress");
            var pct = row.querySelector(".pct");
            if (job.progress !== null) {
              bar.value = job.progress;
              pct.textContent = Math.round(job.progress) + "%";
            }
            row.querySelector(".progress-message").textContent = job.message;
            row.querySelector(".running").textContent = formatSeconds(job.running_for);
          }
        })
        .catch(function () { /* try again at the next tick */ });
    }
    window.setInterval(refresh, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    selectAll();
    confirmations();
    liveProgress();
  });
})();
