// The bastion page: GET /api/v1/bastion/activity (charts and tables) and /api/v1/bastion/sessions (live ones and
// the searchable list). Every data value reaches the DOM through textContent (ECharts draws on a canvas).
"use strict";

(function () {
  const X = window.cloudsocExplore;
  const root = document.getElementById("bastion");
  if (!root) { return; }
  const zone = root.dataset.zone;
  const canKill = root.dataset.canKill === "true";
  const S = X.strings(root);
  const charts = {};
  const PAGE = 25;
  let since = "7d";
  let offset = 0;
  let total = 0;

  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (m, k) { return k in values ? String(values[k]) : m; });
  }

  function chart(id) {
    if (!charts[id] && window.echarts) { charts[id] = window.echarts.init(document.getElementById(id)); }
    return charts[id];
  }

  function showError(err) {
    const node = document.getElementById("bs-error");
    node.textContent = err ? err.message : "";
    node.hidden = !err;
  }

  function head(table, names) {
    const tr = X.el("tr");
    names.forEach(function (n) { tr.appendChild(X.el("th", null, n)); });
    table.appendChild(tr);
  }

  function empty(table, span) {
    const tr = X.el("tr");
    const td = X.el("td", "muted", S.none);
    td.colSpan = span;
    tr.appendChild(td);
    table.appendChild(tr);
  }

  function sessionUrl(id, offsetSecs) {
    const base = "/bastion/sessions/" + encodeURIComponent(id);
    return offsetSecs === null || offsetSecs === undefined ? base : base + "?t=" + offsetSecs;
  }

  function commandCell(c) {
    const td = X.el("td", "bs-cmd");
    const code = X.el("code", null, c.command_line === null ? S.missing : c.command_line);
    if (c.url && c.url.indexOf("/bastion/sessions/") === 0) {
      const a = X.el("a");
      a.href = c.url;  // built by the bastion as /bastion/sessions/<id>?t=<seconds>: a local path
      a.appendChild(code);
      td.appendChild(a);
    } else {
      td.appendChild(code);
    }
    return td;
  }

  function countTable(id, rows, code) {
    const table = document.getElementById(id);
    table.replaceChildren();
    head(table, [S.command, S.count]);
    if (!rows.length) { empty(table, 2); return; }
    rows.forEach(function (r) {
      const tr = X.el("tr");
      const td = X.el("td", "bs-cmd");
      if (r.value === null) {
        td.appendChild(X.el("span", "muted", S.missing));
      } else {
        const a = X.el("a");
        a.href = "#bs-search";
        a.appendChild(code ? X.el("code", null, r.value) : document.createTextNode(r.value));
        a.addEventListener("click", function () {
          document.getElementById("bs-command").value = r.value;
          offset = 0;
          loadSessions();
        });
        td.appendChild(a);
      }
      tr.appendChild(td);
      tr.appendChild(X.el("td", "bs-n", r.count.toLocaleString()));
      table.appendChild(tr);
    });
  }

  function commandTable(id, rows) {
    const table = document.getElementById(id);
    table.replaceChildren();
    head(table, [S.time, S.user, S.host, S.command, S.verdict, S.risk]);
    if (!rows.length) { empty(table, 6); return; }
    rows.forEach(function (c) {
      const tr = X.el("tr", c.high_risk ? "bs-high" : null);
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(c.time, zone)));
      tr.appendChild(X.el("td", null, c.user || ""));
      tr.appendChild(X.el("td", null, c.host || ""));
      tr.appendChild(commandCell(c));
      tr.appendChild(X.el("td", c.verdict ? "bs-verdict bs-v-" + c.verdict.replace(/[^a-z]/g, "") : null, c.verdict || ""));
      tr.appendChild(X.el("td", "bs-n", c.risk_score === null ? "" : c.risk_score));
      table.appendChild(tr);
    });
  }

  function drawCharts(data) {
    const line = chart("chart-commands");
    if (line) {
      line.setOption({
        tooltip: { trigger: "axis" },
        legend: { top: 0, right: 0, data: [S.commands, S.high_risk] },
        grid: { left: 40, right: 16, top: 32, bottom: 40 },
        xAxis: { type: "category", data: data.timeline.map(function (p) { return X.fmtTime(p.start, zone, true); }) },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: S.commands, type: "bar", data: data.timeline.map(function (p) { return p.commands; }), itemStyle: { color: "#3b6fb6" } },
          { name: S.high_risk, type: "bar", data: data.timeline.map(function (p) { return p.high_risk; }), itemStyle: { color: "#c0392b" } },
        ],
      }, true);
    }
    const users = chart("chart-users");
    if (users) {
      const rows = data.users.slice().reverse();
      users.setOption({
        tooltip: { trigger: "axis" },
        grid: { left: 100, right: 16, top: 8, bottom: 24 },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: { type: "category", data: rows.map(function (r) { return r.value === null ? S.missing : r.value; }) },
        series: [{ name: S.commands, type: "bar", data: rows.map(function (r) { return r.count; }), itemStyle: { color: "#3b6fb6" } }],
      }, true);
    }
  }

  function setKpi(id, n) {
    document.querySelector("#" + id + " .bs-num").textContent = Number(n).toLocaleString();
  }

  function refusalTable(rows) {
    const table = document.getElementById("tbl-refusals");
    table.replaceChildren();
    head(table, [S.time, S.user, S.source_ip, S.reason]);
    if (!rows.length) { empty(table, 4); return; }
    rows.forEach(function (r) {
      const tr = X.el("tr");
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(r.time, zone)));
      tr.appendChild(X.el("td", null, r.user || ""));
      tr.appendChild(X.el("td", null, r.source_ip || ""));
      tr.appendChild(X.el("td", null, r.reason || ""));
      table.appendChild(tr);
    });
  }

  function loadActivity() {
    document.querySelectorAll(".bs-preset").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.since === since));
    });
    return X.get("/api/v1/bastion/activity?since=" + encodeURIComponent(since)).then(function (data) {
      showError(null);
      document.getElementById("bs-window").textContent = fill(S.window, {
        since: X.fmtTime(data.since, zone), until: X.fmtTime(data.until, zone),
      });
      setKpi("kpi-commands", data.commands);
      setKpi("kpi-risky", data.high_risk);
      setKpi("kpi-live", data.live_sessions);
      setKpi("kpi-logins", (data.logins.success || 0));
      setKpi("kpi-refusals", (data.logins.failure || 0));
      drawCharts(data);
      countTable("tbl-programs", data.top_programs, true);
      countTable("tbl-top", data.top_commands, true);
      commandTable("tbl-latest", data.latest);
      commandTable("tbl-risky", data.risky);
      refusalTable(data.refusals);
      root.dataset.commands = String(data.commands);
      root.dataset.loaded = since;
    }).catch(showError);
  }

  function kill(session, button) {
    if (!window.confirm(S.confirm_kill)) { return; }
    button.disabled = true;
    window.cloudsoc.api("POST", "/api/v1/bastion/sessions/" + encodeURIComponent(session.id) + "/kill").then(function () {
      button.textContent = S.kill_sent;
    }).catch(function (err) { button.disabled = false; showError(err); });
  }

  function sessionTable(table, items, withKill) {
    table.replaceChildren();
    const names = [S.started, S.user, S.target, S.source_ip, S.status, S.session_commands, ""];
    if (withKill) { names.push(""); }
    head(table, names);
    if (!items.length) { empty(table, names.length); return; }
    items.forEach(function (s) {
      const tr = X.el("tr", s.live ? "bs-live" : null);
      tr.dataset.session = s.id;
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(s.started, zone)));
      tr.appendChild(X.el("td", null, s.user));
      tr.appendChild(X.el("td", null, s.system_user + "@" + s.target));
      tr.appendChild(X.el("td", null, s.source_ip));
      tr.appendChild(X.el("td", null, s.live ? S.live : s.status));
      tr.appendChild(X.el("td", "bs-n", s.commands));
      const open = X.el("td");
      const a = X.el("a", "bs-open", S.replay);
      a.href = sessionUrl(s.id, null);
      open.appendChild(a);
      tr.appendChild(open);
      if (withKill) {
        const td = X.el("td");
        if (s.live) {
          const b = X.el("button", "bs-kill", S.kill);
          b.type = "button";
          b.addEventListener("click", function () { kill(s, b); });
          td.appendChild(b);
        }
        tr.appendChild(td);
      }
      table.appendChild(tr);
    });
  }

  function decide(review, approve, row) {
    if (!window.confirm(approve ? S.confirm_approve : S.confirm_reject)) { return; }
    row.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
    const path = "/api/v1/bastion/reviews/" + encodeURIComponent(review.id) + (approve ? "/approve" : "/reject");
    window.cloudsoc.api("POST", path, {}).then(function (done) {
      row.lastChild.replaceChildren(X.el("span", "bs-decided", done.status === "approved" ? S.review_approved : S.review_rejected));
    }).catch(function (err) {
      row.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      showError(err);
    });
  }

  function reviewTable(items) {
    const table = document.getElementById("tbl-reviews");
    table.replaceChildren();
    const names = [S.asked, S.user, S.target, S.command, S.why, S.expires];
    if (canKill) { names.push(""); }
    head(table, names);
    if (!items.length) {
      const tr = X.el("tr");
      const td = X.el("td", "muted", S.no_reviews);
      td.colSpan = names.length;
      tr.appendChild(td);
      table.appendChild(tr);
      return;
    }
    items.forEach(function (r) {
      const tr = X.el("tr", "bs-review");
      tr.dataset.review = r.id;
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(r.requested, zone)));
      tr.appendChild(X.el("td", null, r.user + " (" + r.source_ip + ")"));
      tr.appendChild(X.el("td", null, r.system_user + "@" + r.target));
      const cmd = X.el("td", "bs-cmd");
      const a = X.el("a");
      a.href = sessionUrl(r.session_id, null);
      a.appendChild(X.el("code", null, r.command));
      cmd.appendChild(a);
      tr.appendChild(cmd);
      tr.appendChild(X.el("td", null, (r.command_group || r.rule) + (r.reason ? ": " + r.reason : "")));
      tr.appendChild(X.el("td", "bs-time", X.fmtTime(r.expires, zone)));
      if (canKill) {
        const td = X.el("td", "bs-actions");
        [[true, S.approve, "bs-approve"], [false, S.reject, "bs-reject"]].forEach(function (spec) {
          const b = X.el("button", spec[2], spec[1]);
          b.type = "button";
          b.addEventListener("click", function () { decide(r, spec[0], tr); });
          td.appendChild(b);
        });
        tr.appendChild(td);
      }
      table.appendChild(tr);
    });
  }

  function loadReviews() {
    // Not while a decision is on its way: the table would be redrawn under the reviewer's click.
    if (document.querySelector("#tbl-reviews button:disabled")) { return Promise.resolve(); }
    return X.get("/api/v1/bastion/reviews?pending=true&limit=100").then(function (items) {
      reviewTable(items);
      root.dataset.reviews = String(items.length);
    }).catch(showError);
  }

  function loadLive() {
    return X.get("/api/v1/bastion/sessions?status=live&limit=100").then(function (page) {
      sessionTable(document.getElementById("tbl-active"), page.items, canKill);
    }).catch(showError);
  }

  function loadSessions() {
    const p = new URLSearchParams();
    ["command", "user", "host", "status"].forEach(function (name) {
      const v = document.getElementById("bs-" + name).value.trim();
      if (v) { p.set(name, v); }
    });
    const shown = p.toString();
    p.set("limit", String(PAGE));
    p.set("offset", String(offset));
    return X.get("/api/v1/bastion/sessions?" + p.toString()).then(function (page) {
      showError(null);
      total = page.total;
      sessionTable(document.getElementById("tbl-sessions"), page.items, false);
      document.getElementById("bs-count").textContent = fill(S.found, { n: page.total });
      document.getElementById("bs-prev").disabled = offset === 0;
      document.getElementById("bs-next").disabled = offset + PAGE >= total;
      root.dataset.sessions = shown + "|" + offset;
      window.history.replaceState(null, "", "/bastion" + (shown ? "?" + shown : ""));
    }).catch(showError);
  }

  document.querySelectorAll(".bs-preset").forEach(function (b) {
    b.addEventListener("click", function () { since = b.dataset.since; loadActivity(); });
  });
  document.getElementById("bs-search").addEventListener("submit", function (ev) {
    ev.preventDefault();
    offset = 0;
    loadSessions();
  });
  document.getElementById("bs-prev").addEventListener("click", function () { offset = Math.max(0, offset - PAGE); loadSessions(); });
  document.getElementById("bs-next").addEventListener("click", function () { offset += PAGE; loadSessions(); });
  window.addEventListener("resize", function () { Object.keys(charts).forEach(function (k) { charts[k].resize(); }); });

  const params = new URLSearchParams(window.location.search);
  ["command", "user", "host", "status"].forEach(function (name) {
    if (params.get(name)) { document.getElementById("bs-" + name).value = params.get(name); }
  });
  loadActivity();
  loadReviews();
  loadLive();
  loadSessions();
  // A user waits at the terminal for the decision: the queue is read again every few seconds.
  window.setInterval(loadReviews, 5000);
})();
