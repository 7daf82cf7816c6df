// The /imports page: log in through the API, upload a CSV, poll its status,
// offer the error report. The access token lives in sessionStorage only.
(function () {
  "use strict";
  var body = document.body;
  var api = {login: body.dataset.login, upload: body.dataset.upload, status: body.dataset.status};
  var $ = function (id) { return document.getElementById(id); };
  var result = $("result");
  var pollTimer = null;

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
      lines.push(errors || (answer.body && answer.body.message) || "Something went wrong.");
    }
    return lines;
  }

  function call(url, options) {
    options = options || {};
    options.headers = options.headers || {};
    options.headers.Accept = "application/json";
    if (token()) { options.headers.Authorization = "Bearer " + token(); }
    return fetch(url, options).then(function (response) {
      return response.json().then(function (json) {
        return {ok: response.ok, status: response.status, body: json};
      }, function () { return {ok: false, status: response.status, body: null}; });
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
    show("error", ["Your session has expired. Please log in again."]);
    return true;
  }

  $("login-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    call(api.login, {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: form.email.value, password: form.password.value})
    }).then(function (answer) {
      if (!answer.ok) { show("error", errorLines(answer)); return; }
      sessionStorage.setItem("vexpenses.token", answer.body.data.token);
      sessionStorage.setItem("vexpenses.email", answer.body.data.user.email);
      form.password.value = "";
      show("", []);
      render();
    }).catch(function () { show("error", ["The server could not be reached."]); });
  });

  $("logout").addEventListener("click", function () {
    sessionStorage.removeItem("vexpenses.token");
    if (pollTimer) { clearTimeout(pollTimer); }
    render();
  });

  $("upload-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = event.target;
    if (!form.file.files.length) { show("error", ["Choose a CSV file first."]); return; }
    var data = new FormData();
    data.append("file", form.file.files[0]);
    data.append("send_invitations", form.send_invitations.checked ? "1" : "0");
    var button = form.querySelector("button");
    button.disabled = true;
    show("", ["Uploading..."]);
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
      show("error", ["The server could not be reached."]);
    });
  });

  var STATES = {0: "waiting for a worker", 1: "finished", 2: "finished with errors", 3: "importing"};

  function poll(id) {
    if (pollTimer) { clearTimeout(pollTimer); }
    call(api.status.replace("ID", id)).then(function (answer) {
      if (loggedOut(answer)) { return; }
      if (!answer.ok) { show("error", errorLines(answer)); return; }
      var d = answer.body.data;
      $("bar").value = d.progress;
      $("percent").textContent = d.progress + "%";
      $("state").textContent = STATES[d.status] || "";
      ["total", "processed", "imported", "rejected", "duplicates"].forEach(function (name) {
        $("count-" + name).textContent = d[name];
      });
      $("eta").textContent = d.status === 3 && d.eta_seconds !== null ?
        "About " + d.eta_seconds + " s left." : "";
      if (d.status === 1 || d.status === 2) {
        $("report").hidden = !d.error_report;
        $("report").dataset.url = d.error_report || "";
        $("report").dataset.id = d.id;
        show(d.status === 1 ? "success" : "error",
             [d.status === 1 ? "Every row was imported." : d.error]);
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
      }).catch(function () { show("error", ["The error report could not be downloaded."]); });
  });

  render();
})();
