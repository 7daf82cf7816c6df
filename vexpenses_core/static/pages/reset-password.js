// The page behind the e-mailed reset link: sets the new password through the API.
// Its words come from the page's own JSON block, in the page's language.
(function () {
  "use strict";
  var text = JSON.parse(document.getElementById("messages").textContent);
  var form = document.getElementById("reset-form");
  var result = document.getElementById("result");
  var params = new URLSearchParams(window.location.search);
  var token = params.get("token") || "";
  var email = params.get("email") || "";
  document.getElementById("email").textContent = email;

  // The API's messages are English by contract: the ones this page knows are
  // shown in its language, any other as the API wrote it.
  function translated(message) {
    return Object.prototype.hasOwnProperty.call(text.api, message) ? text.api[message] : message;
  }

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
    show("error", [text.incomplete]);
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
        show("success", [text.changed]);
        return;
      }
      var errors = answer.body.errors;
      var lines = [];
      if (errors && typeof errors === "object") {
        Object.keys(errors).forEach(function (field) { lines = lines.concat(errors[field]); });
      } else if (errors || answer.body.message) {
        lines.push(errors || answer.body.message);
      } else {
        lines.push(text.failed);
      }
      show("error", lines.map(translated));
      button.disabled = false;
    }).catch(function () {
      show("error", [text.unreachable]);
      button.disabled = false;
    });
  });
})();
