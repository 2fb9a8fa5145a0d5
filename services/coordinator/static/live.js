// Keeps the inbox current without a reload: the server sends "proposals" events (Server-Sent Events)
// when the set of open proposals changes; the table is fetched again and the change is announced to
// screen readers in a polite live region. Without JavaScript the page still works (reload to refresh).
(function () {
  if (!("EventSource" in window)) return;
  var announcer = document.getElementById("live-announcer");
  var source = new EventSource("/live");
  var first = true;
  source.addEventListener("proposals", function (event) {
    var data = JSON.parse(event.data);
    document.querySelectorAll("[data-open-count]").forEach(function (el) {
      el.textContent = data.open ? String(data.open) : "";
    });
    var list = document.getElementById("proposal-list");
    if (list) {
      fetch("/proposals/list", { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null) list.innerHTML = html; });
    }
    if (!first && data.new && announcer) {
      announcer.textContent = data.new === 1
        ? "A new proposal has arrived. " + data.open + " waiting."
        : data.new + " new proposals have arrived. " + data.open + " waiting.";
    }
    first = false;
  });
})();
