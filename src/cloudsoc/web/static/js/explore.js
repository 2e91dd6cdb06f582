// Helpers shared by the overview, search and graph pages: times in the console's zone, query terms, search links.
"use strict";

window.cloudsocExplore = (function () {
  // Intl knows IANA names and "UTC"; a bare abbreviation from the server's clock does not parse, so fall
  // back to UTC then (and say so: the label names the zone actually used).
  function formatter(zone) {
    const opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23", timeZoneName: "short" };
    try {
      return new Intl.DateTimeFormat("sv-SE", Object.assign({ timeZone: zone }, opts));
    } catch (e) {
      return new Intl.DateTimeFormat("sv-SE", Object.assign({ timeZone: "UTC" }, opts));
    }
  }
  const cache = {};

  function fmtTime(iso, zone, short) {
    if (!iso) { return "-"; }
    const d = new Date(iso);
    if (isNaN(d.getTime())) { return String(iso); }
    cache[zone] = cache[zone] || formatter(zone);
    const text = cache[zone].format(d);
    // "2026-11-27 09:59:12 GMT+8": the short form (chart axes) drops seconds and the zone.
    return short ? text.slice(5, 16) : text;
  }

  // A value as the query language reads it literally: bare when it holds only plain characters, else quoted.
  function quote(value) {
    const text = String(value);
    if (/^[A-Za-z0-9._@\/-]+$/.test(text) && !/^(AND|OR|NOT|TO)$/i.test(text)) { return text; }
    return "\"" + text.replace(/\\/g, "\\\\").replace(/"/g, "\\\"") + "\"";
  }

  function term(field, value) { return field + ":" + quote(value); }

  function searchUrl(q, since, until) {
    const p = new URLSearchParams();
    p.set("q", q);
    if (since) { p.set("since", since); }
    if (until) { p.set("until", until); }
    return "/search?" + p.toString();
  }

  // The page's translated strings: a JSON object in the root element's data-strings attribute (data, never code).
  function strings(root) {
    return root.dataset.strings ? JSON.parse(root.dataset.strings) : {};
  }

  // GET JSON; an API error keeps its body (a bad query's position) on the thrown Error.
  function get(url) {
    return fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) {
          const err = new Error((data.error && data.error.message) || r.statusText);
          err.detail = data.error || {};
          throw err;
        }
        return data;
      });
    });
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // A bad query (the API's 400 with the position) shown under the query form, a caret under the culprit.
  function showQueryError(e, qBox) {
    const box = document.getElementById("se-error");
    document.getElementById("se-error-text").textContent = e.message;
    const caret = document.getElementById("se-error-caret");
    const pos = e.detail && typeof e.detail.position === "number" ? e.detail.position : null;
    caret.textContent = pos === null ? "" : qBox.value + "\n" + " ".repeat(pos) + "^";
    caret.hidden = pos === null;
    box.hidden = false;
    return pos;
  }

  // The query bar of the search and graph pages (#se-q, #se-since, #se-until): its state as URL parameters, and
  // back/forward putting an earlier state back into it before ``run`` asks again.
  function queryForm(run) {
    const qBox = document.getElementById("se-q");
    const sinceBox = document.getElementById("se-since");
    const untilBox = document.getElementById("se-until");
    function params(extra) {
      const p = new URLSearchParams();
      p.set("q", qBox.value.trim() || "*");
      if (sinceBox.value.trim()) { p.set("since", sinceBox.value.trim()); }
      if (untilBox.value.trim()) { p.set("until", untilBox.value.trim()); }
      Object.keys(extra || {}).forEach(function (k) { p.set(k, extra[k]); });
      return p;
    }
    window.addEventListener("popstate", function () {
      const p = new URLSearchParams(window.location.search);
      qBox.value = p.get("q") || "";
      sinceBox.value = p.get("since") || "";
      untilBox.value = p.get("until") || "";
      run();
    });
    return { qBox: qBox, sinceBox: sinceBox, untilBox: untilBox, params: params };
  }

  return {
    fmtTime: fmtTime, quote: quote, term: term, searchUrl: searchUrl, strings: strings, get: get, el: el,
    showQueryError: showQueryError, queryForm: queryForm,
  };
})();
