// API tokens: create (the secret is shown once, with a copy button) and revoke, through /api/v1/tokens.
"use strict";

(function () {
  const admin = window.cloudsocAdmin;
  if (!admin.root || !admin.root.classList.contains("tokens-page")) { return; }

  const form = document.getElementById("create-token");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      admin.clearError();
      const scopes = Array.prototype.map.call(form.querySelectorAll("input[name=scope]:checked"), function (b) {
        return b.value;
      });
      window.cloudsoc.api("POST", "/api/v1/tokens", { name: form.elements.name.value.trim(), scopes: scopes })
        .then(function (made) {
          form.reset();
          admin.reveal(null, made.secret);
        }, admin.fail);
    });
  }

  document.querySelectorAll("button.revoke").forEach(function (button) {
    button.addEventListener("click", function () {
      admin.clearError();
      if (!window.confirm(admin.text("tokens.confirm_revoke", { name: button.dataset.name }))) { return; }
      button.disabled = true;
      window.cloudsoc.api("DELETE", "/api/v1/tokens/" + encodeURIComponent(button.dataset.id))
        .then(function () { window.location.reload(); }, function (err) { button.disabled = false; admin.fail(err); });
    });
  });
})();
