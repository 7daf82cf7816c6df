// The pages behind the e-mailed verification and confirmation links: on a
// click, send the link's token to the API route in the form's data-api.
// Never on load: mail scanners open links, and a GET must not use a token.
// Their words come from the page's own JSON block, in the page's language.
(function () {
  "use strict";
  var text = JSON.parse(document.getElementById("messages").textContent);
  var form = document.getElementById("link-form");
  var button = document.getElementById("confirm");
  var status = document.getElementById("status");
  var token = new URLSearchParams(window.location.search).get("token") || "";

  // The API's messages are English by contract: the ones this page knows are
  // shown in its language, any other as the API wrote it.
  function translated(message) {
    return Object.prototype.hasOwnProperty.call(text.api, message) ? text.api[message] : message;
  }

  function show(kind, lines) {
    status.className = kind;
    status.textContent = "";
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      status.appendChild(p);
    });
  }

  if (!token) {
    form.hidden = true;
    show("error", [text.incomplete]);
    return;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    show("", []);
    fetch(form.getAttribute("data-api"), {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify({token: token})
    }).then(function (response) {
      return response.json().then(function (body) { return {ok: response.ok, body: body}; });
    }).then(function (answer) {
      if (answer.ok) {
        form.hidden = true;
        show("success", [text.done]);
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
