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

  // A move form takes the override reason typed once above the list of starts.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var reason = document.getElementById("override");
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-carry-override") || !reason || !reason.value) {
      return;
    }
    var carried = document.createElement("input");
    carried.type = "hidden";
    carried.name = "anticoagulant_override_reason";
    carried.value = reason.value;
    form.appendChild(carried);
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();
