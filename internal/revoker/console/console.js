// The console's live view: the server sends each section rendered by its
// own templates (every value escaped there) as a Server-Sent Event; this
// swaps them in. No other logic lives here.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  // A revocation's answer is a page of its own: show it at /console, so a
  // reload does not post the form again.
  if (document.querySelector("[data-done]")) history.replaceState(null, "", "/console");
  const sections = ["now", "replicas", "stream", "recent", "plot"];
  const es = new EventSource("/console/events");
  es.addEventListener("state", function (e) {
    const s = JSON.parse(e.data);
    for (const id of sections) {
      const el = document.getElementById(id);
      if (el && typeof s[id] === "string") el.innerHTML = s[id];
    }
    live.textContent = "live";
    live.className = "live ok";
  });
  es.onerror = function () {
    if (es.readyState === EventSource.CLOSED) {
      live.textContent = "disconnected: reload the page (log in again if the session ended)";
    } else {
      live.textContent = "reconnecting…";
    }
    live.className = "live bad";
  };
  const form = document.getElementById("revoke-form");
  if (form) {
    form.addEventListener("submit", function () {
      const b = form.querySelector("button");
      b.disabled = true;
      b.textContent = "Revoking…";
    });
  }
})();
