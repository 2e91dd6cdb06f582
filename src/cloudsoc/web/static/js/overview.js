// The overview page: GET /api/v1/overview for the chosen range, drawn with ECharts and plain tables.
// Every data value reaches the DOM through textContent (ECharts draws on a canvas).
"use strict";

(function () {
  const X = window.cloudsocExplore;
  const root = document.getElementById("overview");
  if (!root) { return; }
  const zone = root.dataset.zone;
  const S = X.strings(root);
  const charts = {};
  let range = { since: "24h", until: "" };
  // Source addresses get a longer list than the other breakdowns: an attacker is rarely among the busiest
  // addresses, and the intel marks are what the list is for.
  const TOP = 10;
  const TOP_SOURCES = 20;

  function chart(id) {
    if (!charts[id] && window.echarts) { charts[id] = window.echarts.init(document.getElementById(id)); }
    return charts[id];
  }

  // datetime-local values are wall times in the browser's zone; the API wants an ISO time with an offset.
  function isoOf(local) { return local ? new Date(local).toISOString() : ""; }

  function readUrl() {
    const p = new URLSearchParams(window.location.search);
    if (p.get("since")) { range = { since: p.get("since"), until: p.get("until") || "" }; }
  }

  function writeUrl() {
    const p = new URLSearchParams();
    p.set("since", range.since);
    if (range.until) { p.set("until", range.until); }
    window.history.replaceState(null, "", "/?" + p.toString());
  }

  function markPresets() {
    document.querySelectorAll(".ov-preset").forEach(function (b) {
      b.setAttribute("aria-pressed", String(!range.until && b.dataset.since === range.since));
    });
  }

  function link(q, text) {
    const a = X.el("a", null, text);
    a.href = X.searchUrl(q, range.since, range.until);
    return a;
  }

  function setKpi(id, n, q) {
    const node = document.getElementById(id);
    node.querySelector(".ov-num").textContent = n.toLocaleString();
    if (q !== null) { node.href = X.searchUrl(q, range.since, range.until); }
  }

  function fillTable(id, rows, extra) {
    const table = document.getElementById(id);
    const field = table.dataset.field;
    table.replaceChildren();
    if (!rows.length) {
      const tr = X.el("tr");
      tr.appendChild(X.el("td", "muted", S.none));
      table.appendChild(tr);
      return;
    }
    const max = Math.max.apply(null, rows.map(function (r) { return r.count; }));
    rows.forEach(function (r) {
      const tr = X.el("tr");
      const name = X.el("td", "ov-name");
      if (r.value === null || r.value === undefined) {
        name.appendChild(X.el("span", "muted", S.missing));
      } else if (field) {
        name.appendChild(link(X.term(field, r.value), r.value));
      } else {
        name.textContent = r.value;
      }
      if (extra) { extra(r, name); }
      tr.appendChild(name);
      const bar = X.el("td", "ov-bar");
      const fill = X.el("meter");
      fill.max = max; fill.value = r.count;
      bar.appendChild(fill);
      tr.appendChild(bar);
      const num = X.el("td", "ov-count");
      if (field && r.value !== null && r.value !== undefined) {
        num.appendChild(link(X.term(field, r.value), r.count.toLocaleString()));
      } else {
        num.textContent = r.count.toLocaleString();
      }
      tr.appendChild(num);
      table.appendChild(tr);
    });
  }

  function intelMarks(r, cell) {
    (r.intel || []).forEach(function (source) {
      const badge = X.el("span", "ov-intel", source);
      badge.title = S.intel_hit;
      cell.appendChild(badge);
    });
    if (r.allowed) {
      const ok = X.el("span", "ov-allowed", S.allowed);
      ok.title = r.allowed;
      cell.appendChild(ok);
    }
  }

  function drawTimeline(data) {
    const labels = data.timeline.map(function (p) { return X.fmtTime(p.start, zone, true); });
    const c = chart("chart-timeline");
    if (c) {
      c.setOption({
        animation: false,
        tooltip: { trigger: "axis", renderMode: "richText" },
        legend: { top: 0, data: [S.events, S.failures, S.alerts] },
        grid: { left: 50, right: 50, top: 45, bottom: 30 },
        xAxis: { type: "category", data: labels },
        yAxis: [{ type: "value", name: S.events }, { type: "value", name: S.alerts, minInterval: 1 }],
        series: [
          { name: S.events, type: "bar", data: data.timeline.map(function (p) { return p.events; }) },
          { name: S.failures, type: "line", data: data.timeline.map(function (p) { return p.failures; }) },
          { name: S.alerts, type: "line", yAxisIndex: 1, data: data.timeline.map(function (p) { return p.alerts; }) },
        ],
      }, true);
    }
    const f = chart("chart-failures");
    if (f) {
      f.setOption({
        animation: false,
        tooltip: { trigger: "axis", renderMode: "richText" },
        grid: { left: 50, right: 20, top: 15, bottom: 30 },
        xAxis: { type: "category", data: labels },
        yAxis: { type: "value", minInterval: 1 },
        series: [{ name: S.failures, type: "line", areaStyle: {}, color: "#b42318",
          data: data.timeline.map(function (p) { return p.failures; }) }],
      }, true);
    }
    const pie = chart("chart-clouds");
    if (pie) {
      pie.setOption({
        animation: false,
        tooltip: { trigger: "item", renderMode: "richText" },
        series: [{ type: "pie", radius: ["40%", "70%"],
          data: data.clouds.map(function (r) { return { name: r.value || S.missing, value: r.count }; }) }],
      }, true);
      pie.off("click");
      pie.on("click", function (p) {
        const row = data.clouds[p.dataIndex];
        if (row && row.value) { window.location.href = X.searchUrl(X.term("cloud.provider", row.value), range.since, range.until); }
      });
    }
  }

  function alertsTable(data) {
    const table = document.getElementById("tbl-alerts");
    table.replaceChildren();
    const rows = [];
    Object.keys(data.alerts_by_severity).forEach(function (k) { rows.push([S.severity, k, data.alerts_by_severity[k]]); });
    Object.keys(data.alerts_by_status).forEach(function (k) { rows.push([S.status, k, data.alerts_by_status[k]]); });
    if (!rows.length) {
      const tr = X.el("tr");
      tr.appendChild(X.el("td", "muted", S.none));
      table.appendChild(tr);
    }
    rows.forEach(function (r) {
      const tr = X.el("tr");
      tr.appendChild(X.el("td", "muted", r[0]));
      tr.appendChild(X.el("td", "ov-name", r[1]));
      tr.appendChild(X.el("td", "ov-count", r[2].toLocaleString()));
      table.appendChild(tr);
    });
  }

  function render(data) {
    document.getElementById("ov-window").textContent =
      S.window.replace("{since}", X.fmtTime(data.since, zone)).replace("{until}", X.fmtTime(data.until, zone));
    root.dataset.events = String(data.events);
    setKpi("kpi-events", data.events, "*");
    setKpi("kpi-failures", data.failures, "event.outcome:failure");
    setKpi("kpi-alerts", data.alerts, null);
    drawTimeline(data);
    fillTable("tbl-accounts", data.accounts.slice(0, TOP));
    fillTable("tbl-regions", data.regions.slice(0, TOP));
    fillTable("tbl-ips", data.source_ips, intelMarks);
    fillTable("tbl-identities", data.identities.slice(0, TOP));
    fillTable("tbl-actions", data.actions.slice(0, TOP));
    fillTable("tbl-failed", data.failed_actions.slice(0, TOP));
    alertsTable(data);
    root.dataset.loaded = range.since + "|" + range.until;
  }

  function load() {
    writeUrl();
    markPresets();
    const err = document.getElementById("ov-error");
    err.hidden = true;
    const p = new URLSearchParams({ since: range.since, top: String(TOP_SOURCES), buckets: "48" });
    if (range.until) { p.set("until", range.until); }
    X.get("/api/v1/overview?" + p.toString()).then(render).catch(function (e) {
      err.textContent = e.message;
      err.hidden = false;
    });
  }

  document.querySelectorAll(".ov-preset").forEach(function (b) {
    b.addEventListener("click", function () {
      range = { since: b.dataset.since, until: "" };
      load();
    });
  });
  document.getElementById("ov-range").addEventListener("submit", function (ev) {
    ev.preventDefault();
    const since = isoOf(document.getElementById("ov-since").value);
    if (!since) { return; }
    range = { since: since, until: isoOf(document.getElementById("ov-until").value) };
    load();
  });
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) { charts[k].resize(); });
  });
  readUrl();
  load();
})();
