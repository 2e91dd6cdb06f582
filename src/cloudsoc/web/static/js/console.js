// cloudsoc console: shared page behaviour. No inline scripts anywhere (the CSP forbids them).
"use strict";

// The CSRF token of this session, for fetch() calls that change state (pages put it in <meta name="csrf-token">).
window.cloudsoc = {
  csrfToken: function () {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  },
  // fetch() with the session cookie and the CSRF header; JSON in and out.
  api: function (method, url, body) {
    const headers = { "Accept": "application/json", "X-CSRF-Token": window.cloudsoc.csrfToken() };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      return r.status === 204 ? null : r.json().then(function (data) {
        if (!r.ok) { throw new Error((data.error && data.error.message) || r.statusText); }
        return data;
      });
    });
  },
};
