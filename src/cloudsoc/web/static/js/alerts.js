// Alert queue: new alerts arrive on the SSE stream (/api/v1/alerts/stream) and are put at the top of the queue.
// Rows are built with createElement/textContent only: alert fields come from events and are hostile.
"use strict";

(function () {
  const table = document.getElementById("alert-queue");
  const root = document.querySelector(".alerts-page");
  if (!table || !root || table.dataset.live !== "on" || !window.EventSource) { return; }
  const strings = JSON.parse(root.dataset.strings);
  const lang = root.dataset.lang;
  const zone = root.dataset.zone;
  const rank = { informational: 0, low: 1, medium: 2, high: 3, critical: 4 };
  const minimum = table.dataset.minSeverity;
  const body = table.tBodies[0];
  const liveState = document.getElementById("live-state");

  function text(key) { return strings[key] || key; }

  // "2026-11-27 10:00:00 CST" in the console's zone, as the server renders times.
  function localTime(iso) {
    const when = new Date(iso);
    if (isNaN(when.getTime())) { return iso; }
    let format;
    try {
      format = new Intl.DateTimeFormat("en-CA", {
        timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
        second: "2-digit", hourCycle: "h23", timeZoneName: "short",
      });
    } catch (e) {
      format = new Intl.DateTimeFormat("en-CA", {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
        hourCycle: "h23", timeZoneName: "short",
      });
    }
    const p = {};
    format.formatToParts(when).forEach(function (part) { p[part.type] = part.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second + " " + p.timeZoneName;
  }

  function cell(row, cls, content) {
    const td = document.createElement("td");
    if (cls) { td.className = cls; }
    if (content instanceof Node) { td.appendChild(content); } else { td.textContent = content; }
    row.appendChild(td);
    return td;
  }

  function badge(kind, value) {
    const span = document.createElement("span");
    span.className = kind + " " + kind + "-" + value;
    span.textContent = text("alerts." + (kind === "sev" ? "severity" : "status") + "." + value);
    return span;
  }

  function addAlert(a) {
    if (minimum && rank[a.severity] < rank[minimum]) { return; }
    if (body.querySelector('tr[data-id="' + CSS.escape(a.id) + '"]')) { return; }
    const empty = body.querySelector("tr.empty");
    if (empty) { empty.remove(); }
    const row = document.createElement("tr");
    row.className = "alert-row arrived";
    row.dataset.id = a.id;
    row.dataset.rule = a.rule.id;
    row.title = text("alerts.live_new");
    cell(row, "time", localTime(a.last_time));
    cell(row, "", badge("sev", a.severity));
    const rule = document.createElement("span");
    const link = document.createElement("a");
    link.href = "/alerts/" + encodeURIComponent(a.id);
    link.textContent = (lang === "zh" && a.rule.name_zh) ? a.rule.name_zh : a.rule.name;
    const id = document.createElement("span");
    id.className = "rule-id muted";
    id.textContent = a.rule.id;
    rule.appendChild(link);
    rule.appendChild(document.createTextNode(" "));
    rule.appendChild(id);
    cell(row, "rule", rule);
    cell(row, "key", a.group_key || "");
    cell(row, "count", String(a.count));
    cell(row, "", badge("status", a.status));
    cell(row, "assignee", a.assignee || "");
    body.insertBefore(row, body.firstChild);
  }

  const source = new EventSource("/api/v1/alerts/stream");
  source.addEventListener("open", function () { if (liveState) { liveState.hidden = false; } });
  source.addEventListener("error", function () { if (liveState) { liveState.hidden = true; } });
  source.addEventListener("alert", function (event) {
    try { addAlert(JSON.parse(event.data)); } catch (e) { console.warn("alert stream: bad message", e); }
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();
