// The investigation graph: /api/v1/graph drawn with Cytoscape.js (identities, access keys, source addresses,
// actions, accounts). Clicking a node opens its panel with search and intel links. Data reaches the DOM only
// through textContent and attributes; Cytoscape draws labels on its canvas.
"use strict";

(function () {
  const X = window.cloudsocExplore;
  const root = document.getElementById("graph");
  if (!root) { return; }
  const S = X.strings(root);
  const form = X.queryForm(run);
  const qBox = form.qBox;
  const params = form.params;
  const canvas = document.getElementById("gr-canvas");
  const summary = document.getElementById("gr-summary");
  // Node colours by kind (an intel hit overrides its address colour); the legend in graph.css matches.
  const COLOURS = { identity: "#1f5fbf", access_key: "#7c3aed", ip: "#0f766e", action: "#b45309", account: "#4b5563" };
  const HIT = "#dc2626";
  let cy = null;
  let nodes = {};
  let generation = 0;

  function fmt(template, values) {
    return String(template || "").replace(/\{(\w+)\}/g, function (m, k) { return k in values ? values[k] : m; });
  }

  function showError(e) {
    X.showQueryError(e, qBox);
    summary.textContent = "";
    root.dataset.state = "error";
  }

  function isHit(n) { return n.kind === "ip" && n.intel.length > 0 && !n.allowed; }

  function intelTypes(n) {
    const types = {};
    n.intel.forEach(function (i) { i.intel_types.forEach(function (t) { types[t] = true; }); });
    return Object.keys(types);
  }

  function label(n) {
    const text = n.value.length > 28 ? n.value.slice(0, 27) + "…" : n.value;
    return isHit(n) ? text + " ⚠" : text;
  }

  function draw(data) {
    nodes = {};
    const maxCount = Math.max(1, ...data.edges.map(function (e) { return e.count; }));
    const elements = data.nodes.map(function (n) {
      nodes[n.id] = n;
      return { group: "nodes", data: { id: n.id, label: label(n), colour: isHit(n) ? HIT : COLOURS[n.kind],
        size: isHit(n) ? 34 : 22 }, classes: isHit(n) ? "hit" : n.kind };
    });
    data.edges.forEach(function (e, i) {
      elements.push({ group: "edges", data: { id: "e" + i, source: e.source, target: e.target, count: e.count,
        width: 1 + 7 * Math.sqrt(e.count / maxCount), colour: e.failures > 0 ? "#f59e0b" : "#9ca3af" } });
    });
    if (cy) { cy.destroy(); }
    cy = window.cytoscape({
      container: canvas,
      elements: elements,
      layout: { name: "cose", animate: false, randomize: false, nodeRepulsion: function () { return 9000; },
        idealEdgeLength: function () { return 90; } },
      style: [
        { selector: "node", style: { "background-color": "data(colour)", "label": "data(label)", "font-size": 10,
          "width": "data(size)", "height": "data(size)", "color": "#1d2430", "text-valign": "bottom",
          "text-margin-y": 3 } },
        { selector: "node.hit", style: { "border-width": 4, "border-color": "#7f1d1d", "font-weight": "bold",
          "color": HIT } },
        { selector: "node:selected", style: { "border-width": 4, "border-color": "#111827" } },
        { selector: "edge", style: { "width": "data(width)", "line-color": "data(colour)", "curve-style": "bezier",
          "opacity": 0.75 } },
      ],
      wheelSensitivity: 0.3,
    });
    cy.on("tap", "node", function (ev) { open(ev.target.id()); });
    // Where each node is drawn, for tests (and tools) that click it like a person: the canvas has no DOM nodes.
    window.cloudsocGraph = { position: function (nodeId) {
      const node = cy.getElementById(nodeId);
      if (!node.length) { return null; }
      const box = canvas.getBoundingClientRect();
      const at = node.renderedPosition();
      return { x: box.left + at.x, y: box.top + at.y };
    }, hits: function () { return cy.nodes(".hit").map(function (n) { return n.id(); }); } };
    root.dataset.state = "ready";
  }

  function fact(dl, name, value) {
    dl.appendChild(X.el("dt", null, name));
    dl.appendChild(X.el("dd", null, value));
  }

  function open(id) {
    const n = nodes[id];
    if (!n) { return; }
    document.getElementById("gr-hint").hidden = true;
    document.getElementById("gr-node").hidden = false;
    document.getElementById("gr-node-kind").textContent = S["kind_" + n.kind] || n.kind;
    document.getElementById("gr-node-value").textContent = n.value;
    const dl = document.getElementById("gr-node-facts");
    dl.replaceChildren();
    fact(dl, S.field, n.field);
    fact(dl, S.events, String(n.count));
    fact(dl, S.failures, String(n.failures));
    if (n.provider) { fact(dl, S.cloud, n.provider); }
    Object.keys(n.regions || {}).forEach(function (r) { fact(dl, S.region + " " + r, String(n.regions[r])); });
    if (n.allowed) { fact(dl, S.allowed, n.allowed); }
    const p = params();
    document.getElementById("gr-search").href = X.searchUrl(X.term(n.field, n.value), p.get("since"), p.get("until"));
    const focus = new URLSearchParams(p);
    focus.set("q", X.term(n.field, n.value));
    document.getElementById("gr-focus").href = "/graph?" + focus.toString();
    const intelLink = document.getElementById("gr-intel");
    intelLink.hidden = n.kind !== "ip";
    intelLink.href = "/intel?" + new URLSearchParams({ value: n.value }).toString();
    const list = document.getElementById("gr-intel-list");
    list.replaceChildren();
    document.getElementById("gr-intel-title").hidden = !n.intel.length;
    n.intel.forEach(function (i) {
      list.appendChild(X.el("li", "gr-hit", fmt(S.intel_line,
        { source: i.source, types: i.intel_types.join(", ") || "-", confidence: i.confidence })));
    });
    const around = document.getElementById("gr-neighbours");
    around.replaceChildren();
    cy.getElementById(id).connectedEdges().forEach(function (edge) {
      const other = nodes[edge.source().id() === id ? edge.target().id() : edge.source().id()];
      const li = X.el("li");
      const b = X.el("button", "gr-neighbour", other.value);
      b.type = "button";
      b.addEventListener("click", function () { cy.$(":selected").unselect(); cy.getElementById(other.id).select(); open(other.id); });
      li.appendChild(b);
      const raw = cy.getElementById(id).edgesWith(cy.getElementById(other.id))[0];
      const count = raw ? raw.data("count") : 0;
      li.appendChild(X.el("span", "muted", " " + (S["kind_" + other.kind] || other.kind) + (count ? " · " + count : "")));
      around.appendChild(li);
    });
  }

  function run() {
    generation += 1;
    const gen = generation;
    document.getElementById("se-error").hidden = true;
    root.dataset.state = "loading";
    summary.textContent = S.loading;
    X.get("/api/v1/graph?" + params().toString()).then(function (data) {
      if (gen !== generation) { return; }
      if (!data.nodes.length) {
        if (cy) { cy.destroy(); cy = null; }
        summary.textContent = S.empty;
        root.dataset.state = "ready";
        return;
      }
      let text = fmt(S.summary, { events: data.events, nodes: data.nodes.length, edges: data.edges.length,
        ms: Math.round(data.seconds * 1000) });
      if (data.truncated) { text += " " + S.truncated; }
      if (!data.access_keys) { text += " " + S.no_keys; }
      summary.textContent = text;
      draw(data);
    }).catch(function (e) { if (gen === generation) { showError(e); } });
  }

  document.getElementById("se-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    window.history.pushState(null, "", "/graph?" + params().toString());
    run();
  });
  run();
})();
