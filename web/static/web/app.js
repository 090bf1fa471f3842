// The pages' few behaviours; no inline script (the Content-Security-Policy forbids it).
(function () {
  "use strict";

  // A countdown: <span data-countdown="ISO time" data-now="server's ISO time" data-done="text">.
  // Counted from the server's clock (a wall display's own clock may be off), in the page's time
  // since it was drawn; says data-done (or "expired", for a hold) when it has run out.
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      if (el._skew === undefined) {
        var server = Date.parse(el.getAttribute("data-now") || "");
        el._skew = isNaN(server) ? 0 : server - Date.now();
      }
      var now = Date.now() + el._skew;
      var left = Math.round((Date.parse(el.getAttribute("data-countdown")) - now) / 1000);
      if (left <= 0) {
        el.textContent = el.getAttribute("data-done") || "expired";
        el.closest("[data-hold]") && el.closest("[data-hold]").classList.add("expired");
        return;
      }
      var hours = Math.floor(left / 3600), minutes = Math.floor((left % 3600) / 60), seconds = left % 60;
      var mm = (hours && minutes < 10 ? "0" : "") + minutes;
      el.textContent = (hours ? hours + ":" : "") + mm + ":" + (seconds < 10 ? "0" : "") + seconds;
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) {
      return;
    }
    if (target.closest("[data-print]")) {
      window.print();
    }
    if (target.closest("[data-fullscreen]") && document.documentElement.requestFullscreen) {
      document.documentElement.requestFullscreen();
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    window.setInterval(tick, 1000);
  });
  document.addEventListener("htmx:afterSwap", tick);
})();

// A self-refreshing part (the board, the flow) waits while someone is filling in a form in it,
// so a refresh never throws away a half-done answer.
document.addEventListener("htmx:beforeRequest", function (event) {
  "use strict";
  var part = event.detail && event.detail.elt;
  if (!(part instanceof Element) || !part.hasAttribute("hx-trigger")) {
    return;
  }
  var active = document.activeElement;
  var typing = active && part.contains(active) && active.matches("input, textarea, select");
  var ticked = part.querySelector("form input[type=checkbox]:checked");
  if (typing || ticked) {
    event.preventDefault();
  }
});
