/* The API docs page (/docs): Swagger UI from the gateway's own files (vendor/, pinned), set up
 * here because the page's Content-Security-Policy runs no inline script.
 *
 * A key typed into "Authorize" stays in this page's memory only (persistAuthorization off):
 * nothing goes to storage, where another page of this origin could read it. The document is
 * not sent to swagger.io's validator (validatorUrl null): the page talks to this gateway only.
 */
"use strict";

window.addEventListener("DOMContentLoaded", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
