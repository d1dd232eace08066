// The API page: Swagger UI over this server's own contract. A file of its own, because the
// pages' Content-Security-Policy allows no inline script.
window.addEventListener("load", function () {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: false,
    // Swagger UI would otherwise ask a third-party validator about our contract.
    validatorUrl: null,
    tryItOutEnabled: false,
  });
});
