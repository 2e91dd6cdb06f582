// Starts Swagger UI (from the npm package) on /api/docs; kept out of the page because the CSP forbids inline scripts.
"use strict";
(function () {
  const el = document.getElementById("swagger");
  if (el && window.SwaggerUIBundle) {
    window.SwaggerUIBundle({ url: el.dataset.spec, domNode: el, deepLinking: false });
  }
})();
