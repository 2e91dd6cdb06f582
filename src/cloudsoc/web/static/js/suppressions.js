// Alert queue: remove an analyst suppression (DELETE /api/v1/alerts/suppressions/{id}, with the CSRF header).
"use strict";

(function () {
  const errorBox = document.getElementById("suppression-error");
  document.querySelectorAll("button.unsuppress").forEach(function (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      errorBox.hidden = true;
      window.cloudsoc.api("DELETE", "/api/v1/alerts/suppressions/" + encodeURIComponent(button.dataset.id))
        .then(function () { button.closest("tr").remove(); }, function (err) {
          errorBox.textContent = err.message;
          errorBox.hidden = false;
          button.disabled = false;
        });
    });
  });
})();
