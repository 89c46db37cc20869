// Swagger UI over this service's own OpenAPI document.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger",
    deepLinking: true,
    tryItOutEnabled: true,
    persistAuthorization: true,
  });
});
