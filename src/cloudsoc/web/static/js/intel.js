// Intel: mark a looked-up value a false positive (/api/v1/intel/fp) and import a feed file (multipart to
// /api/v1/intel/import); both with the CSRF header.
"use strict";

(function () {
  const root = document.querySelector(".intel-page");
  if (!root) { return; }
  const strings = JSON.parse(root.dataset.strings);
  function text(key, values) {
    let out = strings[key] || key;
    Object.keys(values || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(values[k])); });
    return out;
  }

  // False positive: a local allow entry for the looked-up value (or its removal), then the look-up again.
  const fp = document.getElementById("fp-form");
  if (fp) {
    const fpError = document.getElementById("fp-error");
    const send = function (undo) {
      fpError.hidden = true;
      window.cloudsoc.api("POST", "/api/v1/intel/fp", {
        value: fp.dataset.value, reason: fp.elements.reason.value, undo: undo,
      }).then(function () { window.location.reload(); }, function (err) {
        fpError.textContent = text("intel.failed") + " " + err.message;
        fpError.hidden = false;
      });
    };
    fp.addEventListener("submit", function (event) { event.preventDefault(); send(false); });
    document.getElementById("fp-undo").addEventListener("click", function () { send(true); });
  }

  const form = document.getElementById("import-form");
  if (!form) { return; }
  const status = document.getElementById("import-status");
  const errorBox = document.getElementById("import-error");

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const data = new FormData(form);
    if (!data.get("source")) { data.delete("source"); }
    errorBox.hidden = true;
    status.textContent = text("intel.import_running");
    fetch("/api/v1/intel/import", {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRF-Token": window.cloudsoc.csrfToken() },
    }).then(function (r) {
      return r.json().then(function (out) {
        if (!r.ok) { throw new Error((out.error && out.error.message) || r.statusText); }
        return out;
      });
    }).then(function (out) {
      status.textContent = text("intel.import_done", {
        indicators: out.indicators, source: out.source, skipped: out.skipped,
      });
      status.classList.add("ok");
    }, function (err) {
      status.textContent = "";
      errorBox.textContent = text("intel.failed") + " " + err.message;
      errorBox.hidden = false;
    });
  });
})();
