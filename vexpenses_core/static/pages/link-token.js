// The pages behind the e-mailed verification and confirmation links: on a
// click, send the link's token to the API route in the form's data-api.
// Never on load: mail scanners open links, and a GET must not use a token.
(function () {
  "use strict";
  var page = window.vexpensesPage;
  var form = document.getElementById("link-form");
  var button = document.getElementById("confirm");
  var status = document.getElementById("status");
  var token = new URLSearchParams(window.location.search).get("token") || "";

  if (!token) {
    form.hidden = true;
    page.show(status, "error", [page.text.incomplete]);
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    page.show(status, "", []);
    page.send(form, button, status, {token: token}, page.text.done);
  });
})();
