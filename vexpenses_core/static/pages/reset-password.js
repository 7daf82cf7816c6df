// The page behind the e-mailed reset link: sets the new password through the API.
(function () {
  "use strict";
  var form = document.getElementById("reset-form");
  var result = document.getElementById("result");
  var params = new URLSearchParams(window.location.search);
  var token = params.get("token") || "";
  var email = params.get("email") || "";
  document.getElementById("email").textContent = email;

  function show(kind, lines) {
    result.className = kind;
    result.textContent = "";
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      result.appendChild(p);
    });
  }

  if (!token || !email) {
    form.hidden = true;
    show("error", ["This password reset link is incomplete. Please use the link from your e-mail."]);
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button");
    button.disabled = true;
    fetch(form.getAttribute("data-api"), {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({
        token: token,
        email: email,
        password: form.password.value,
        password_confirmation: form.password_confirmation.value
      })
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (answer.ok) {
        form.hidden = true;
        show("success", ["Your password has been changed. You can now log in with it."]);
        return;
      }
      var errors = answer.body.errors;
      var lines = [];
      if (errors && typeof errors === "object") {
        Object.keys(errors).forEach(function (field) { lines = lines.concat(errors[field]); });
      } else {
        lines.push(errors || answer.body.message || "Something went wrong.");
      }
      show("error", lines);
      button.disabled = false;
    }).catch(function () {
      show("error", ["The server could not be reached. Please try again."]);
      button.disabled = false;
    });
  });
})();
