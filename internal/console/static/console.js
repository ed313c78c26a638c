// warden console: the overview's live high-risk stream (Server-Sent Events from /ui/stream).
// Text only (textContent): nothing from an event is ever parsed as HTML.
"use strict";
(function () {
  var list = document.getElementById("stream");
  var state = document.getElementById("stream-state");
  if (!list || !window.EventSource) {
    if (state) state.textContent = "Live updates need a browser with EventSource.";
    return;
  }
  var maxItems = 200;
  function describe(ev) {
    var parts = [ev.time ? ev.time.replace("T", " ").replace(/\..*Z$/, "Z") : "", ev.type];
    var actor = ev.actor || {};
    if (actor.name) parts.push(actor.name);
    var t = ev.target || {};
    var what = [t.tool, t.action, t.resource].filter(Boolean).join(" ");
    if (what) parts.push(what);
    if (t.risk) parts.push("risk " + t.risk);
    var d = ev.decision || {};
    if (d.effect) parts.push(d.effect.toUpperCase() + (d.reason ? " (" + d.reason + ")" : ""));
    return parts.filter(Boolean).join(" · ");
  }
  var src = new EventSource(list.getAttribute("data-src"));
  src.onopen = function () { state.textContent = "Live: showing high-risk calls, denials, approvals, kills and alerts as they happen."; };
  src.onerror = function () { state.textContent = "Disconnected; reconnecting…"; };
  src.addEventListener("audit", function (m) {
    var ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    var li = document.createElement("li");
    li.textContent = describe(ev);
    li.setAttribute("data-type", ev.type || "");
    if (ev.decision && ev.decision.effect) li.setAttribute("data-effect", ev.decision.effect);
    list.insertBefore(li, list.firstChild);
    while (list.childNodes.length > maxItems) list.removeChild(list.lastChild);
  });
})();
