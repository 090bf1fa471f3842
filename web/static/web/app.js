// The pages' few behaviours; no inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  // A hold's countdown: <span data-countdown="ISO time">; says when the hold has run out.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round((Date.parse(el.getAttribute("data-countdown")) - Date.now()) / 1000);
      if (left <= 0) {
        el.textContent = "expired";
        el.closest("[data-hold]") && el.closest("[data-hold]").classList.add("expired");
        return;
      }
      var minutes = Math.floor(left / 60), seconds = left % 60;
      el.textContent = minutes + ":" + (seconds < 10 ? "0" : "") + seconds;
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target instanceof Element && target.closest("[data-print]")) {
      window.print();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();
