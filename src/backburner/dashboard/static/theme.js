// Theme: the system's preference unless the toggle chose one, which is
// remembered. Loaded in <head> (not deferred) so the page never flashes
// the wrong theme.
(function () {
  "use strict";
  var KEY = "backburner-theme";
  var root = document.documentElement;
  var chosen = null;
  try { chosen = window.localStorage.getItem(KEY); } catch (e) { chosen = null; }
  if (chosen === "light" || chosen === "dark") { root.setAttribute("data-theme", chosen); }

  function current() {
    var set = root.getAttribute("data-theme");
    if (set) { return set; }
    return window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var button = document.getElementById("theme-toggle");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { window.localStorage.setItem(KEY, next); } catch (e) { /* private mode */ }
      document.dispatchEvent(new CustomEvent("backburner:theme"));
    });
  });
})();
