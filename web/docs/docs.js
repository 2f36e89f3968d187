// Swagger UI (vendored, see swagger-ui.LICENSE) for this API's own description, with "Try it out" sending a bearer
// token entered under "Authorize". Nothing is fetched from elsewhere: no validator badge, no remote assets.
window.ui = SwaggerUIBundle({
  url: 'openapi.json',
  dom_id: '#swagger-ui',
  deepLinking: true,
  validatorUrl: null,
  persistAuthorization: false,
  tryItOutEnabled: false,
});
