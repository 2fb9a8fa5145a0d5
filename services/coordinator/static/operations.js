// Refresh the operations figures in place every five seconds (no live region: a table read aloud
// every five seconds would drown everything else; the sample time at the top says how fresh it is).
(function () {
  const box = document.getElementById("operations");
  if (!box) return;
  setInterval(async function () {
    try {
      const response = await fetch(box.dataset.refresh, { credentials: "same-origin" });
      if (response.ok) box.innerHTML = await response.text();
    } catch (e) { /* keep the last figures */ }
  }, 5000);
})();
