"""The issue's full flow: register, login, failed login, me, list, refresh (GET and POST,
and a reuse), logout, forgot and recover password, and work done by a worker.

It must write the expected rows, keep the ones whose request failed, give the
worker's rows no user, and store no secret in any column of any row, nor in
the logs.
"""

import importlib.util
import logging
import urllib.parse

import jwt
import sqlalchemy as sa
from vexpenses_audit_log import chain
from vexpenses_audit_log.testing import PASSWORD, bearer, login, register, settle, stored_rows

from vexpenses_core.testing import JWT_SECRET, make_user

# The real CSV import joins the flow when that plugin is installed; the
# stand-in plugin's worker task runs in every case.
HAS_CSV_IMPORT = importlib.util.find_spec("vexpenses_csv_import") is not None
CSV = "Nome,E-mail,Data de nascimento\nCarla Dias,carla@example.com,1991-02-03\n"

UA = {"User-Agent": "flow-test/1.0"}
EXPECTED = [
    # (action, whose row: "ana", "admin" or None for nobody)
    ("User register", "ana"),
    ("Verify email", "ana"),  # registration e-mails a verification link
    ("User login", "ana"),
    ("User login failed", None),
    ("Get user", "ana"),
    ("Get users", "ana"),
    ("User refresh token", "ana"),
    ("User refresh token", "ana"),
    ("Refresh token reuse detected", "ana"),
    ("User login", "ana"),
    ("User logout", "ana"),
    ("Password reset requested", "ana"),
    ("Password reset completed", "ana"),
    ("Greeting queued", "admin"),
    ("Greeting sent", None),  # by the task, in a worker thread
]


def run_flow(app):
    """Drive every route of the flow; return what must never be stored."""
    registry = app.app.registry
    secrets = [PASSWORD, JWT_SECRET]

    ana = register(app, "ana@example.com", **UA).json["data"]["id"]
    first = login(app, "ana@example.com", **UA)
    secrets += [first["token"], first["refresh_token"]]
    app.post_json("/api/v1/user/authenticate",
                  {"email": "ana@example.com", "password": "wrong-password-9"},
                  headers={**UA, "X-Request-ID": "flow-failed-login"}, status=401)
    secrets.append("wrong-password-9")
    auth = {**UA, **bearer(first["token"])}
    app.get("/api/v1/user/me", headers=auth)
    app.get("/api/v1/user?name=Ana", headers=auth)
    refreshed = app.get("/api/v1/user/refresh-token", headers=auth, status=201).json["data"]
    rotated = app.post_json("/api/v1/user/refresh-token",
                            {"refresh_token": first["refresh_token"]}, headers=UA,
                            status=201).json["data"]
    secrets += [refreshed["token"], rotated["token"], rotated["refresh_token"]]
    # The old refresh token again: reuse, a 401 whose transaction commits.
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": first["refresh_token"]},
                  headers={**UA, "X-Request-ID": "flow-reuse"}, status=401)

    second = login(app, "ana@example.com", **UA)
    secrets += [second["token"], second["refresh_token"]]
    app.get("/api/v1/user/logout", headers={**UA, **bearer(second["token"])}, status=201)

    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"}, headers=UA)
    registry.queue.drain()  # the link is made in a task
    reset_url = registry.standin_reset_urls[-1]
    reset_token = urllib.parse.parse_qs(urllib.parse.urlsplit(reset_url).query)["token"][0]
    new_password = "brand-new-password-2"
    app.post_json("/api/v1/user/recover-password",
                  {"token": reset_token, "email": "ana@example.com", "password": new_password,
                   "password_confirmation": new_password}, headers=UA)
    secrets += [reset_url, reset_token, new_password]

    admin, admin_token = make_user(registry, email="root@example.com", is_admin=True)
    some_jwt = jwt.encode({"sub": "42", "typ": "access"},
                          "another-secret-long-enough-for-hs256-0123456789", algorithm="HS256")
    app.post_json("/api/v1/standin/greet", {
        "name": "Bia",
        "api_token": "sk_live_0123456789abcdef",
        "note": f"forwarded header: Bearer {some_jwt}",
        "link": "https://partner.example/callback?token=tok-secret-123&ok=1",
    }, headers={**UA, **bearer(admin_token), "X-Request-ID": "flow-greet"}, status=201)
    secrets += [admin_token, some_jwt, "sk_live_0123456789abcdef", "tok-secret-123"]

    if HAS_CSV_IMPORT:
        app.post("/api/v1/user/upload", upload_files=[("file", "users.csv", CSV.encode())],
                 headers={**UA, **bearer(admin_token), "X-Request-ID": "flow-import"},
                 status=201)
    settle(app, timeout=60)
    with registry.dbengine.connect() as conn:
        secrets += [h for h in conn.scalars(sa.text("SELECT password_hash FROM users")) if h]
    return {"ana": ana, "admin": admin}, secrets


def test_full_flow_rows_users_and_no_secrets(make_app, standin, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    plugins = "audit_log audit_standin" + (" csv_import" if HAS_CSV_IMPORT else "")
    app = make_app(**{"vexpenses.plugins": plugins,
                      "vexpenses.upload_dir": str(tmp_path / "uploads")})
    users, secrets = run_flow(app)
    rows = stored_rows(app)

    flow = [r for r in rows if not r["hook"].startswith(("vexpenses_import",
                                                          "vexpenses_users_imported"))]
    assert [(r["action"], r["user_id"]) for r in flow] == [
        (action, users.get(who)) for action, who in EXPECTED
    ]
    by_action = {r["action"]: r for r in flow}

    failed = by_action["User login failed"]  # its request was rolled back, its row stays
    assert failed["request_id"] == "flow-failed-login"
    assert failed["description"] == "Failed login for ana@example.com."
    assert by_action["Refresh token reuse detected"]["request_id"] == "flow-reuse"

    web = by_action["Get user"]
    assert (web["ip_address"], web["user_agent"]) == ("127.0.0.1", "flow-test/1.0")

    sent = by_action["Greeting sent"]  # the worker's row: no user, the web request's id
    assert sent["user_id"] is None and sent["ip_address"] is None
    assert sent["request_id"] == by_action["Greeting queued"]["request_id"] == "flow-greet"
    assert '"api_token":"[REDACTED]"' in sent["payload"]
    assert "?token=[REDACTED]&ok=1" in sent["payload"]
    assert f'"owner":{{"email":"root@example.com","id":{users["admin"]}}}' in sent["payload"]

    if HAS_CSV_IMPORT:
        imported = [r for r in rows if r["request_id"] == "flow-import"]
        web = [r for r in imported if r["ip_address"] is not None]  # the upload's request
        jobs = [r for r in imported if r["ip_address"] is None]  # the import's tasks
        assert all(r["user_id"] == users["admin"] for r in web)
        assert jobs and all(r["user_id"] is None for r in jobs)

    stored = "\n".join(str(value) for row in rows for value in row.values())
    # Ours at any level; everyone's from INFO up (taskiq logs task arguments at DEBUG).
    logged = "\n".join(r.getMessage() for r in caplog.records
                       if r.name.startswith("vexpenses_audit_log") or r.levelno >= logging.INFO)
    for secret in secrets:
        assert secret not in stored
        assert secret not in logged
    for marker in ("eyJ", "$argon2", "Bearer ey"):
        assert marker not in stored

    assert chain.verify(app.app.registry.dbengine).ok
