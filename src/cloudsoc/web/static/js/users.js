// Users (admin): add, change role, disable/enable, unlock, reset password, through /api/v1/users.
"use strict";

(function () {
  const admin = window.cloudsocAdmin;
  if (!admin.root || !admin.root.classList.contains("users-page")) { return; }
  const url = function (name) { return "/api/v1/users/" + encodeURIComponent(name); };
  const reload = function () { window.location.reload(); };

  const addForm = document.getElementById("add-user");
  addForm.addEventListener("submit", function (event) {
    event.preventDefault();
    admin.clearError();
    const f = addForm.elements;
    const typed = f.password.type === "password";
    const body = { name: f.name.value.trim(), role: f.role.value, password: f.password.value };
    window.cloudsoc.api("POST", "/api/v1/users", body).then(function (user) {
      // A password the admin typed is theirs already; a generated one is shown once, to hand over.
      admin.reveal(admin.text("admin.done_created", { name: user.name }), typed ? "" : body.password);
      addForm.reset();
      f.password.type = "password";
    }, admin.fail);
  });

  document.querySelectorAll("select.role").forEach(function (select) {
    const before = select.value;
    select.addEventListener("change", function () {
      admin.clearError();
      window.cloudsoc.api("PATCH", url(select.dataset.name), { role: select.value })
        .then(reload, function (err) { select.value = before; admin.fail(err); });
    });
  });

  function action(selector, run) {
    document.querySelectorAll(selector).forEach(function (button) {
      button.addEventListener("click", function () {
        admin.clearError();
        const done = run(button.dataset.name);
        if (done) { button.disabled = true; done.then(reload, function (err) { button.disabled = false; admin.fail(err); }); }
      });
    });
  }
  action("button.disable", function (name) {
    if (!window.confirm(admin.text("admin.confirm_disable", { name: name }))) { return null; }
    return window.cloudsoc.api("PATCH", url(name), { disabled: true });
  });
  action("button.enable", function (name) { return window.cloudsoc.api("PATCH", url(name), { disabled: false }); });
  action("button.unlock", function (name) { return window.cloudsoc.api("POST", url(name) + "/unlock"); });

  const resetPanel = document.getElementById("reset-panel");
  const resetForm = document.getElementById("reset-form");
  let resetting = null;
  document.querySelectorAll("button.reset").forEach(function (button) {
    button.addEventListener("click", function () {
      resetting = button.dataset.name;
      document.getElementById("reset-name").textContent = resetting;
      resetForm.reset();
      resetForm.elements.password.type = "password";
      resetPanel.hidden = false;
      resetPanel.scrollIntoView({ block: "start" });
      resetForm.elements.password.focus();
    });
  });
  resetForm.querySelector("button.cancel").addEventListener("click", function () { resetPanel.hidden = true; });
  resetForm.addEventListener("submit", function (event) {
    event.preventDefault();
    admin.clearError();
    const field = resetForm.elements.password;
    const typed = field.type === "password";
    const value = field.value;
    window.cloudsoc.api("PATCH", url(resetting), { password: value }).then(function (user) {
      resetPanel.hidden = true;
      admin.reveal(admin.text("admin.done_password", { name: user.name }), typed ? "" : value);
    }, admin.fail);
  });
})();
