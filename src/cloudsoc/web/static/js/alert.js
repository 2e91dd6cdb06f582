// One alert: triage (status, assignee, comment, suppression) through /api/v1/alerts with the CSRF header; the
// page reloads to show the server's view (its history included).
"use strict";

(function () {
  const root = document.querySelector(".alert-page");
  const triage = document.getElementById("triage");
  if (!root || !triage) { return; }
  const id = encodeURIComponent(root.dataset.id);
  const strings = JSON.parse(root.dataset.strings);
  const errorBox = document.getElementById("triage-error");

  function fail(err) {
    errorBox.textContent = (strings["alerts.triage_failed"] || "") + " " + err.message;
    errorBox.hidden = false;
  }

  function call(path, body) {
    errorBox.hidden = true;
    return window.cloudsoc.api("POST", "/api/v1/alerts/" + id + path, body);
  }

  triage.querySelectorAll("button.act").forEach(function (button) {
    button.addEventListener("click", function () {
      const comment = document.getElementById("status-comment").value.trim();
      call("/" + button.dataset.action, comment ? { comment: comment } : {})
        .then(function () { window.location.reload(); }, fail);
    });
  });

  document.getElementById("assign-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const value = event.target.elements.assignee.value;
    call("/assign", { assignee: value || null }).then(function () { window.location.reload(); }, fail);
  });

  document.getElementById("comment-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const text = event.target.elements.text.value.trim();
    if (!text) { return; }
    call("/comment", { text: text }).then(function () { window.location.reload(); }, fail);
  });

  document.getElementById("suppress-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const f = event.target.elements;
    const conditions = {};
    f.conditions.value.split("\n").forEach(function (line) {
      const at = line.indexOf("=");
      if (at > 0) { conditions[line.slice(0, at).trim()] = line.slice(at + 1).trim(); }
    });
    const body = { rule: f.rule.value.trim(), conditions: conditions, reason: f.reason.value };
    if (f.days.value) { body.days = Number(f.days.value); }
    errorBox.hidden = true;
    window.cloudsoc.api("POST", "/api/v1/alerts/suppressions", body).then(function () {
      document.getElementById("suppress-done").hidden = false;
    }, fail);
  });
})();
