// The search page: results, histogram and field values from /api/v1/events, one event's detail, and the
// intel lookup of a pivoted address. Data reaches the DOM only through textContent.
"use strict";

(function () {
  const X = window.cloudsocExplore;
  const root = document.getElementById("search");
  if (!root) { return; }
  const zone = root.dataset.zone;
  const S = X.strings(root);
  const form = X.queryForm(run);
  const qBox = form.qBox;
  const sinceBox = form.sinceBox;
  const untilBox = form.untilBox;
  const params = form.params;
  const tbody = document.querySelector("#se-results tbody");
  const more = document.getElementById("se-more");
  let histogram = null;
  let cursor = null;
  let generation = 0;  // answers of an older search are dropped

  function pick(doc, path) {
    let node = doc;
    for (const part of path.split(".")) {
      if (node === null || typeof node !== "object") { return undefined; }
      node = node[part];
    }
    return node;
  }

  function showError(e) {
    const pos = X.showQueryError(e, qBox);
    if (pos !== null) { qBox.focus(); qBox.setSelectionRange(pos, pos); }
  }

  function addTerm(field, value) {
    const term = X.term(field, value);
    const q = qBox.value.trim();
    qBox.value = !q || q === "*" ? term : q + " AND " + term;
    submit();
  }

  function pivot(ip) {
    qBox.value = X.term("source.ip", ip);
    submit();
  }

  function ipCell(ip) {
    const td = X.el("td");
    if (ip) {
      const b = X.el("button", "se-ip", ip);
      b.type = "button";
      b.title = S.pivot;
      b.addEventListener("click", function (ev) { ev.stopPropagation(); pivot(ip); });
      td.appendChild(b);
    }
    return td;
  }

  function detailRow(doc, row) {
    const tr = X.el("tr", "se-detail");
    const td = X.el("td");
    td.colSpan = 7;
    td.appendChild(X.el("h3", null, S.document));
    const pre = X.el("pre", "se-json se-doc", JSON.stringify(doc, null, 2));
    td.appendChild(pre);
    tr.appendChild(td);
    const id = pick(doc, "event.id");
    if (id) {
      X.get("/api/v1/events/" + encodeURIComponent(id)).then(function (d) {
        td.appendChild(X.el("h3", null, S.original));
        td.appendChild(X.el("pre", "se-json se-original", d.original ? JSON.stringify(d.original, null, 2) : S.no_original));
      }).catch(function (e) { td.appendChild(X.el("p", "error", e.message)); });
    }
    row.after(tr);
    return tr;
  }

  function addRows(items) {
    items.forEach(function (doc) {
      const tr = X.el("tr", "se-row");
      tr.appendChild(X.el("td", "se-time", X.fmtTime(doc["@timestamp"], zone)));
      ["cloud.provider", "cloud.account.id", "user.name", "event.action", "event.outcome"].forEach(function (f) {
        const v = pick(doc, f);
        tr.appendChild(X.el("td", f === "event.outcome" ? "se-outcome-" + String(v) : null, v === undefined ? "" : v));
      });
      tr.appendChild(ipCell(pick(doc, "source.ip")));
      let open = null;
      tr.addEventListener("click", function () {
        if (open) { open.remove(); open = null; tr.classList.remove("se-open"); return; }
        open = detailRow(doc, tr);
        tr.classList.add("se-open");
      });
      tbody.appendChild(tr);
    });
  }

  function drawHistogram(h) {
    if (!window.echarts) { return; }
    histogram = histogram || window.echarts.init(document.getElementById("se-histogram"));
    histogram.setOption({
      animation: false,
      tooltip: { trigger: "axis", renderMode: "richText" },
      grid: { left: 50, right: 20, top: 15, bottom: 30 },
      xAxis: { type: "category", data: h.buckets.map(function (b) { return X.fmtTime(b.start, zone, true); }) },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ name: S.matches, type: "bar", data: h.buckets.map(function (b) { return b.count; }) }],
    }, true);
    histogram.off("click");
    histogram.on("click", function (p) {
      // a bar narrows the search to its time slice
      const b = h.buckets[p.dataIndex];
      if (!b) { return; }
      const start = new Date(b.start);
      sinceBox.value = start.toISOString();
      untilBox.value = new Date(start.getTime() + h.interval_seconds * 1000).toISOString();
      submit();
    });
  }

  function fillField(section, data) {
    const ul = section.querySelector("ul");
    ul.replaceChildren();
    data.values.forEach(function (v) {
      const li = X.el("li");
      if (v.value === null) {
        li.appendChild(X.el("span", "muted", S.missing));
      } else {
        const b = X.el("button", "se-value", v.value);
        b.type = "button";
        b.title = S.add_term;
        b.addEventListener("click", function () { addTerm(section.dataset.field, v.value); });
        li.appendChild(b);
      }
      li.appendChild(X.el("span", "se-n", v.count.toLocaleString()));
      ul.appendChild(li);
    });
    if (!data.values.length) { ul.appendChild(X.el("li", "muted", S.none)); }
  }

  function intel(ip) {
    const panel = document.getElementById("se-intel");
    if (!ip) { panel.hidden = true; return; }
    X.get("/api/v1/intel/lookup?" + new URLSearchParams({ value: ip }).toString()).then(function (d) {
      document.getElementById("se-intel-value").textContent = d.value;
      const verdict = document.getElementById("se-intel-verdict");
      verdict.className = d.matches.length ? "se-bad" : "muted";
      let text = d.matches.length ? S.listed.replace("{n}", String(d.matches.length)) : S.not_listed;
      if (d.allowed) { text += " " + S.allowed.replace("{list}", d.allowed); }
      verdict.textContent = text;
      const table = document.getElementById("se-intel-matches");
      table.replaceChildren();
      if (d.matches.length) {
        const head = X.el("tr");
        [S.m_source, S.m_value, S.m_types, S.m_confidence, S.m_tags, S.m_last_seen].forEach(function (h) { head.appendChild(X.el("th", null, h)); });
        table.appendChild(head);
      }
      d.matches.forEach(function (m) {
        const tr = X.el("tr", "se-match");
        [m.source, m.value, m.intel_types.join(", "), m.confidence === null ? "" : m.confidence,
          m.tags.join(", "), X.fmtTime(m.last_seen, zone)].forEach(function (v) { tr.appendChild(X.el("td", null, v)); });
        table.appendChild(tr);
      });
      const whois = document.getElementById("se-intel-whois");
      if (!d.whois) { whois.textContent = S.whois_none; }
      else if (!d.whois.cached) { whois.textContent = S.whois_queued.replace("{domain}", d.whois.domain); }
      else { whois.textContent = JSON.stringify(d.whois.record, null, 2); }
      panel.hidden = false;
    }).catch(function (e) { showError(e); });
  }

  function pivotIp() {
    const m = /^(?:source\.ip|related\.ip):(?:"([^"]+)"|(\S+))$/.exec(qBox.value.trim());
    return m ? (m[1] || m[2]) : null;
  }

  function loadPage(gen) {
    const extra = { limit: "50" };
    if (cursor) { extra.cursor = cursor; }
    return X.get("/api/v1/events?" + params(extra)).then(function (page) {
      if (gen !== generation) { return; }
      addRows(page.items);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      document.getElementById("se-summary").textContent = S.summary
        .replace("{shown}", tbody.querySelectorAll("tr.se-row").length.toLocaleString())
        .replace("{total}", page.total.toLocaleString()).replace("{ms}", String(Math.round(page.seconds * 1000)));
      root.dataset.total = String(page.total);
    });
  }

  function run() {
    generation += 1;
    const gen = generation;
    document.getElementById("se-error").hidden = true;
    const graphLink = document.getElementById("se-graph");
    if (graphLink) { graphLink.href = "/graph?" + params(); }
    tbody.replaceChildren();
    cursor = null;
    more.hidden = true;
    root.dataset.state = "loading";
    intel(pivotIp());
    loadPage(gen).then(function () {
      if (gen !== generation) { return null; }
      const fields = Array.from(document.querySelectorAll(".se-field")).map(function (section) {
        return X.get("/api/v1/events/fields?" + params({ field: section.dataset.field, size: "8" }))
          .then(function (d) { if (gen === generation) { fillField(section, d); } });
      });
      const hist = X.get("/api/v1/events/histogram?" + params({ buckets: "60" }))
        .then(function (h) { if (gen === generation) { drawHistogram(h); } });
      return Promise.all(fields.concat([hist]));
    }).then(function () {
      if (gen === generation) { root.dataset.state = "done"; }
    }).catch(function (e) {
      if (gen !== generation) { return; }
      document.getElementById("se-summary").textContent = "";
      showError(e);
      root.dataset.state = "error";
    });
  }

  function submit() {
    const url = "/search?" + params();
    window.history.pushState(null, "", url);
    run();
  }

  document.getElementById("se-form").addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
  more.addEventListener("click", function () { loadPage(generation).catch(showError); });
  window.addEventListener("resize", function () { if (histogram) { histogram.resize(); } });
  run();
})();
