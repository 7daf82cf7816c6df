// The page behind the e-mailed reset link: sets the new password through the API.
(function () {
  "use strict";
  var page = window.vexpensesPage;
  var form = document.getElementById("reset-form");
  var result = document.getElementById("result");
  var params = new URLSearchParams(window.location.search);
  var token = params.get("token") || "";
  var email = params.get("email") || "";
  document.getElementById("email").textContent = email;

  if (!token || !email) {
    form.hidden = true;
    page.show(result, "error", [page.text.incomplete]);
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    page.send(form, form.querySelector("button"), result, {
      token: token,
      email: email,
      password: form.password.value,
      password_confirmation: form.password_confirmation.value
    }, page.text.changed);
  });
})();
