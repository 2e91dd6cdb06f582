// Account pages: the "shown once" panel with its copy button, generated passwords, and the page's strings.
// Secrets and names go into the DOM with textContent only.
"use strict";

window.cloudsocAdmin = (function () {
  const root = document.querySelector(".admin-page");
  const strings = root && root.dataset.strings ? JSON.parse(root.dataset.strings) : {};
  const errorBox = document.getElementById("admin-error");

  function text(key, values) {
    let out = strings[key] || key;
    Object.keys(values || {}).forEach(function (k) { out = out.split("{" + k + "}").join(String(values[k])); });
    return out;
  }

  function fail(err) {
    errorBox.textContent = text("admin.failed") + " " + err.message;
    errorBox.hidden = false;
  }

  function clearError() { errorBox.hidden = true; errorBox.textContent = ""; }

  // 20 characters from 56 unambiguous ones (~116 bits), drawn without modulo bias.
  const ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  function password() {
    const out = [];
    const limit = 256 - (256 % ALPHABET.length);
    while (out.length < 20) {
      const bytes = new Uint8Array(32);
      window.crypto.getRandomValues(bytes);
      bytes.forEach(function (b) { if (b < limit && out.length < 20) { out.push(ALPHABET[b % ALPHABET.length]); } });
    }
    return out.join("");
  }

  const panel = document.getElementById("reveal");
  const secretBox = document.getElementById("reveal-secret");
  const copied = document.getElementById("reveal-copied");

  // Show a message and, when given, a secret with its copy button; "Done" reloads so the tables are current.
  function reveal(message, secret) {
    const note = document.getElementById("reveal-text");
    if (message) { note.textContent = message; }
    const row = document.getElementById("reveal-secret-row");
    const once = document.getElementById("reveal-once");
    secretBox.textContent = secret || "";
    row.hidden = !secret;
    once.hidden = !secret;
    copied.textContent = "";
    panel.hidden = false;
    panel.scrollIntoView({ block: "start" });
  }

  if (panel) {
    document.getElementById("reveal-copy").addEventListener("click", function () {
      const value = secretBox.textContent;
      const select = function () {
        const range = document.createRange();
        range.selectNodeContents(secretBox);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        copied.textContent = text("admin.copy_manual");
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(value).then(function () { copied.textContent = text("admin.copied"); }, select);
      } else {
        select();
      }
    });
    document.getElementById("reveal-done").addEventListener("click", function () {
      secretBox.textContent = "";
      window.location.reload();
    });
  }

  // A "Generate" button fills its form's password field with a new password and shows it to be read out.
  document.querySelectorAll("button.generate").forEach(function (button) {
    button.addEventListener("click", function () {
      const field = button.form.elements.password;
      field.value = password();
      field.type = "text";
    });
  });

  return { root: root, text: text, fail: fail, clearError: clearError, reveal: reveal };
})();
