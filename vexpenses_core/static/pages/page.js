// What the pages behind e-mailed links share: their words (the page's own
// JSON block, in the page's language), showing a verdict, and sending a
// form's JSON to the API route in its data-api.
window.vexpensesPage = (function () {
  "use strict";
  var text = JSON.parse(document.getElementById("messages").textContent);

  // The API's messages are English by contract: the ones this page knows are
  // shown in its language, any other as the API wrote it.
  function translated(message) {
    return Object.prototype.hasOwnProperty.call(text.api, message) ? text.api[message] : message;
  }

  function show(target, kind, lines) {
    target.className = kind;
    target.textContent = "";
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      target.appendChild(p);
    });
  }

  // Every message of a failure envelope: errors by field, or its one message.
  function failures(body) {
    var errors = body.errors;
    var lines = [];
    if (errors && typeof errors === "object") {
      Object.keys(errors).forEach(function (field) { lines = lines.concat(errors[field]); });
    } else if (errors || body.message) {
      lines.push(errors || body.message);
    } else {
      lines.push(text.failed);
    }
    return lines.map(translated);
  }

  // POST ``body`` to the form's API route; on success hide the form and show
  // ``done`` in ``target``, else the API's messages, and let the user retry.
  function send(form, button, target, body, done) {
    button.disabled = true;
    fetch(form.getAttribute("data-api"), {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (json) { return {ok: response.ok, body: json}; });
    }).then(function (answer) {
      if (answer.ok) {
        form.hidden = true;
        show(target, "success", [done]);
        return;
      }
      show(target, "error", failures(answer.body));
      button.disabled = false;
    }).catch(function () {
      show(target, "error", [text.unreachable]);
      button.disabled = false;
    });
  }

  return {text: text, show: show, send: send};
})();
