// Rules: the enabled switch and "test this rule" (/api/v1/rules). Results are data from events: textContent only.
"use strict";

(function () {
  const root = document.querySelector(".rules-page");
  if (!root) { return; }
  const strings = JSON.parse(root.dataset.strings);
  const errorBox = document.getElementById("rules-error");
  function text(key, values) {
    let out = strings[key] || key;
    Object.keys(values || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(values[k])); });
    return out;
  }
  function fail(box, err) { box.textContent = text("rules.failed") + " " + err.message; box.hidden = false; }

  root.querySelectorAll("input.toggle").forEach(function (box) {
    box.addEventListener("change", function () {
      const on = box.checked;
      box.disabled = true;
      errorBox.hidden = true;
      window.cloudsoc.api("POST", "/api/v1/rules/" + encodeURIComponent(box.dataset.id) + (on ? "/enable" : "/disable"))
        .then(function (rule) {
          box.checked = rule.enabled;
          box.parentNode.querySelector(".state").textContent = text(rule.enabled ? "rules.on" : "rules.off");
        }, function (err) { box.checked = !on; fail(errorBox, err); })
        .then(function () { box.disabled = false; });
    });
  });

  const panel = document.getElementById("test-panel");
  if (!panel) { return; }
  const form = document.getElementById("test-form");
  const summary = document.getElementById("test-summary");
  const testError = document.getElementById("test-error");
  const results = document.getElementById("test-results");
  let current = null;

  root.querySelectorAll("button.test").forEach(function (button) {
    button.addEventListener("click", function () {
      current = button.dataset.id;
      document.getElementById("test-rule").textContent = current;
      summary.textContent = "";
      results.hidden = true;
      testError.hidden = true;
      panel.hidden = false;
      panel.scrollIntoView({ block: "start" });
      form.requestSubmit();
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!current) { return; }
    const hours = Number(form.elements.hours.value) || 72;
    summary.textContent = text("rules.test_running");
    testError.hidden = true;
    results.hidden = true;
    window.cloudsoc.api("POST", "/api/v1/rules/" + encodeURIComponent(current) + "/test", { hours: hours })
      .then(function (out) {
        summary.textContent = text("rules.test_summary", {
          scanned: out.scanned, selected: out.selected, alerts: out.alerts.length, seconds: out.seconds,
        });
        const body = results.tBodies[0];
        body.replaceChildren();
        out.alerts.forEach(function (a) {
          const row = document.createElement("tr");
          row.className = "test-alert";
          const sev = document.createElement("span");
          sev.className = "sev sev-" + a.severity;
          sev.textContent = text("alerts.severity." + a.severity);
          [sev, a.group_key || "", String(a.count || 1), a.text || ""].forEach(function (value) {
            const td = document.createElement("td");
            if (value instanceof Node) { td.appendChild(value); } else { td.textContent = value; }
            row.appendChild(td);
          });
          body.appendChild(row);
        });
        if (!out.alerts.length) { summary.textContent += " " + text("rules.test_none"); }
        results.hidden = !out.alerts.length;
      }, function (err) { summary.textContent = ""; fail(testError, err); });
  });
})();
