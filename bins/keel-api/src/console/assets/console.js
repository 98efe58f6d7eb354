// Keel console: confirmations before actions, and live pages refreshed in place.
// Served from /console/assets/ (the CSP allows no inline script). No data is ever inserted as
// HTML from anywhere but this server's own escaped pages, parsed inert by DOMParser.
"use strict";

document.addEventListener("submit", function (event) {
  var question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

(function live() {
  var main = document.querySelector("main[data-live]");
  if (!main) return;
  var seconds = parseInt(main.getAttribute("data-live"), 10) || 5;
  var busy = false;
  function refresh() {
    // Not while someone is typing in a filter or the tab is hidden.
    var active = document.activeElement;
    if (busy || document.hidden || (active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName))) return;
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Console-Refresh": "1" } })
      .then(function (res) {
        if (res.redirected || res.status === 401 || res.status === 403) {
          window.location.reload();
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, "text/html").querySelector("main[data-live]");
        if (fresh) {
          main.replaceChildren.apply(main, Array.prototype.slice.call(document.adoptNode(fresh).childNodes));
          document.documentElement.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, seconds * 1000);
})();
