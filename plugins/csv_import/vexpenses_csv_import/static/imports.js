// The /imports page: log in through the API, upload a CSV, poll its status,
// offer the error report. The access token lives in sessionStorage only.
// Its words come from the page's own JSON block, in the page's language.
(function () {
  "use strict";
  var text = JSON.parse(document.getElementById("messages").textContent);
  var body = document.body;
  var api = {login: body.dataset.login, upload: body.dataset.upload, status: body.dataset.status};
  var $ = function (id) { return document.getElementById(id); };
  var result = $("result");
  var pollTimer = null;

  function has(table, key) { return Object.prototype.hasOwnProperty.call(table, key); }

  // "{name}" in a catalogue string replaced by values[name] (a function: no "$&" surprises).
  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, name) {
      return has(values, name) ? String(values[name]) : all;
    });
  }

  // A count's words: "one" for exactly 1, "zero" for 0 when there is one, else "other".
  function plural(forms, n) {
    var form = n === 0 && has(forms, "zero") ? forms.zero : n === 1 ? forms.one : forms.other;
    return fill(form, {n: n});
  }

  // The API's messages are English by contract: the ones this page knows are
  // shown in its language, any other as the API wrote it.
  function translated(message) { return has(text.api, message) ? text.api[message] : message; }

  function token() { return sessionStorage.getItem("vexpenses.token"); }

  function show(kind, lines) {
    result.className = kind;
    result.textContent = "";
    lines.forEach(function (line) {
      var p = document.createElement("p");
      p.textContent = line;
      result.appendChild(p);
    });
  }

  function errorLines(answer) {
    var errors = answer.body && answer.body.errors;
    var lines = [];
    if (errors && typeof errors === "object") {
      Object.keys(errors).forEach(function (field) { lines = lines.concat(errors[field]); });
    } else {
      lines.push(errors || (answer.body && answer.body.message) || text.failed);
    }
    return lines.map(translated);
  }

  function call(url, options) {
    options = options || {};
    options.headers = options.headers || {};
    options.headers.Accept = "application/json";
    if (token()) { options.headers.Authorization = "Bearer " + token(); }
    return fetch(url, options).then(function (response) {
      return response.json().then(function (json) {
        return {ok: response.ok, status: response.status, body: json,
                retryAfter: Number(response.headers.get("Retry-After")) || 1};
      }, function () { return {ok: false, status: response.status, body: null, retryAfter: 1}; });
    });
  }

  function render() {
    var logged = Boolean(token());
    $("login-form").hidden = logged;
    $("import-section").hidden = !logged;
    $("who").textContent = sessionStorage.getItem("vexpenses.email") || "";
  }

  function loggedOut(answer) {
    if (answer.status !== 401) { return false; }
    sessionStorage.removeItem("vexpenses.token");
    render();
    show("error", [text.session_expired]);
    return true;
  }

  // A refused login in the page's language when it has words for it.
  function loginError(answer) {
    var words = text.login_failed[String(answer.status)];
    if (words === undefined) { return errorLines(answer); }
    return [typeof words === "string" ? words : plural(words, answer.retryAfter)];
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    call(api.login, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: form.email.value, password: form.password.value})
    }).then(function (answer) {
      if (!answer.ok) { show("error", loginError(answer)); return; }
      sessionStorage.setItem("vexpenses.token", answer.body.data.token);
      sessionStorage.setItem("vexpenses.email", answer.body.data.user.email);
      form.password.value = "";
      show("", []);
      render();
    }).catch(function () { show("error", [text.unreachable]); });
  });

  $("logout").addEventListener("click", function () {
    sessionStorage.removeItem("vexpenses.token");
    if (pollTimer) { clearTimeout(pollTimer); }
    render();
  });

  $("upload-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    if (!form.file.files.length) { show("error", [text.choose_file]); return; }
    var data = new FormData();
    data.append("file", form.file.files[0]);
    data.append("send_invitations", form.send_invitations.checked ? "1" : "0");
    var button = form.querySelector("button");
    button.disabled = true;
    show("", [text.uploading]);
    call(api.upload, {method: "POST", body: data}).then(function (answer) {
      button.disabled = false;
      if (loggedOut(answer)) { return; }
      if (!answer.ok) { show("error", errorLines(answer)); return; }
      show("", []);
      $("progress-box").hidden = false;
      $("report").hidden = true;
      $("import-id").textContent = "#" + answer.body.data.id;
      $("import-name").textContent = answer.body.data.original_name;
      poll(answer.body.data.id);
    }).catch(function () {
      button.disabled = false;
      show("error", [text.unreachable]);
    });
  });

  // How a finished import went, from its counts (the API's own "error" is English).
  function outcome(d) {
    if (d.status === 1) { return text.all_imported; }
    var bad = d.rejected + d.duplicates;
    if (!bad) { return d.error ? translated(d.error) : text.failed; }  // the file as a whole
    var rows = d.rejected && d.duplicates ?
      fill(text.rejected_and_duplicates, {rejected: plural(text.rejected, d.rejected),
                                          duplicates: plural(text.duplicates, d.duplicates)}) :
      d.rejected ? plural(text.rejected, d.rejected) : plural(text.duplicates, d.duplicates);
    var line = fill(text.outcome, {rows: rows, imported: plural(text.imported, d.imported)});
    return line + " " + (d.error_rows >= bad ? plural(text.report_lists_all, bad) :
                         plural(text.report_lists_first, d.error_rows));
  }

  function poll(id) {
    if (pollTimer) { clearTimeout(pollTimer); }
    call(api.status.replace("ID", id)).then(function (answer) {
      if (loggedOut(answer)) { return; }
      if (!answer.ok) { show("error", errorLines(answer)); return; }
      var d = answer.body.data;
      $("bar").value = d.progress;
      $("percent").textContent = d.progress + "%";
      $("state").textContent = text.states[String(d.status)] || "";
      $("state").dataset.status = d.status;
      ["total", "processed", "imported", "rejected", "duplicates"].forEach(function (name) {
        $("count-" + name).textContent = d[name];
      });
      $("eta").textContent = d.status === 3 && d.eta_seconds !== null ?
        plural(text.eta, d.eta_seconds) : "";
      if (d.status === 1 || d.status === 2) {
        $("report").hidden = !d.error_report;
        $("report").dataset.url = d.error_report || "";
        $("report").dataset.id = d.id;
        show(d.status === 1 ? "success" : "error", [outcome(d)]);
        return;
      }
      pollTimer = setTimeout(function () { poll(id); }, 500);
    }).catch(function () {
      pollTimer = setTimeout(function () { poll(id); }, 2000);
    });
  }

  $("report").addEventListener("click", function () {
    var button = $("report");
    fetch(button.dataset.url, {headers: {Authorization: "Bearer " + token()}})
      .then(function (response) {
        if (!response.ok) { throw new Error("report"); }
        return response.blob();
      }).then(function (blob) {
        var link = document.createElement("a");
        link.href = URL.createObjectURL(blob);
        link.download = "import-" + button.dataset.id + "-errors.csv";
        document.body.appendChild(link);
        link.click();
        link.remove();
      }).catch(function () { show("error", [text.report_failed]); });
  });

  render();
})();
