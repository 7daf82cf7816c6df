"""GET /api/v1/user/me/export (issue 12, LGPD right of access): everything held about
the user, from the core and from every plugin, and nothing secret nor anyone else's.

On SQLite and MariaDB (the database_url fixture), with and without Redis, with
csv_import, audit_log and the mailer enabled, mail delivered to a real aiosmtpd
server.
"""

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from vexpenses_audit_log.testing import settle
from vexpenses_csv_import.testing import finished_status, make_csv, upload
from vexpenses_mailer.testing import SMTPSink, links

from vexpenses_core import hookimpl
from vexpenses_core.accounts.export import MAX_ROWS, ExportConflict
from vexpenses_core.testing import make_user

PASSWORD = "correct horse battery"
EXPORT = "/api/v1/user/me/export"
PLUGINS = "csv_import audit_log mailer"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def smtp_server():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def make_app(make_testapp, smtp_server):
    made = []

    def make(**overrides):
        app = make_testapp(**{
            "vexpenses.plugins": PLUGINS,
            "vexpenses.mailer.backend": "smtp",
            "vexpenses.mailer.smtp_url": f"smtp://127.0.0.1:{smtp_server.port}?timeout=5",
            "vexpenses.mailer.mail_from": "Equipe vexpenses <no-reply@vexpenses.test>",
            **overrides})
        made.append(app)
        return app

    yield make
    for app in made:  # no audit row of this test may land in the next one's tables
        settle(app)


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_app):
    """Without Redis, and with a real one (the identity cache, shared limits)."""
    if request.param == "redis":
        return make_app(**{"vexpenses.redis_url": request.getfixturevalue("redis_url")})
    return make_app()


def register(app, email, name="Ana Souza"):
    body = {"name": name, "email": email, "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17"}
    return app.post_json("/api/v1/user/register", body, status=201).json["data"]


def login(app, email, agent="Export-Test/1.0"):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": PASSWORD},
                         headers={"User-Agent": agent}, status=201).json["data"]


def column(app, sql, **params):
    with app.app.registry.dbengine.connect() as conn:
        return [row[0] for row in conn.execute(sa.text(sql), params)]


def test_export_holds_every_kind_of_data_and_no_secret(make_app, smtp_server):
    # Embedded: the import and the mail run as in-process tasks (Redis would
    # queue them for a worker); the tests below also run with Redis.
    app = make_app()
    smtp_server.clear()
    ana = register(app, "ana@example.com")
    bia = register(app, "bia@example.com", name="Bia Lima")
    first = login(app, "ana@example.com", agent="Old-Phone/2.0")
    app.post_json("/api/v1/user/logout", {}, headers=bearer(first["token"]), status=201)
    session = login(app, "ana@example.com")
    token = session["token"]
    # a password reset link: its token's hash stored, the link sealed in the task
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"}, status=200)
    # an import Ana uploaded, which creates someone else's account
    content = make_csv([("Caio Prado", "caio@example.com", "1991-02-03")])
    import_id = upload(app, token, content, filename="people.csv").json["data"]["id"]
    finished_status(app, token, import_id)
    # Bia's own activity, which must not show in Ana's export
    bia_token = login(app, "bia@example.com")["token"]
    bia_import = upload(app, bia_token, make_csv([("Davi Reis", "davi@example.com",
                                                   "1992-03-04")])).json["data"]["id"]
    finished_status(app, bia_token, bia_import)
    settle(app)
    assert smtp_server.wait_for(4)  # welcomes for Ana and Bia; Ana's reset link; Caio's
    reset_links = [link for message in smtp_server.messages if "ana@example.com" in message["To"]
                   for link in links(message.text) if "reset-password" in link]
    assert reset_links
    reset_tokens = [parse_qs(urlsplit(link).query)["token"][0] for link in reset_links]

    res = app.get(EXPORT, headers=bearer(token), status=200)
    assert res.headers["Cache-Control"] == "no-store"
    assert "Content-Disposition" not in res.headers
    body = res.json
    assert body["status"] is True and body["message"] == "Success on export user"
    data = body["data"]

    me = app.get("/api/v1/user/me", headers=bearer(token)).json["data"]
    assert {key: data["user"][key] for key in me} == me
    assert data["user"]["is_admin"] is False and ana["id"] == me["id"]

    sessions = {s["id"]: s for s in data["sessions"]}
    assert len(sessions) == 2
    current = [s for s in sessions.values() if s["current"]]
    assert len(current) == 1 and current[0]["user_agent"] == "Export-Test/1.0"
    assert current[0]["revoked_at"] is None
    ended = [s for s in sessions.values() if not s["current"]][0]
    assert ended["user_agent"] == "Old-Phone/2.0" and ended["revoked_reason"] == "logout"
    assert ended["ip_address"] == "127.0.0.1"

    assert [i["id"] for i in data["imports"]] == [import_id]
    assert data["imports"][0]["original_name"] == "people.csv"
    assert data["imports"][0]["imported"] == 1

    actions = [row["action"] for row in data["audit_log"]]
    assert {"User register", "User login", "User logout", "Upload file"} <= set(actions)
    assert all(row["user_id"] == ana["id"] for row in data["audit_log"])
    assert data["audit_log"] == sorted(data["audit_log"], key=lambda r: -r["id"])

    kinds = sorted(m["kind"] for m in data["mail_deliveries"])
    assert "welcome" in kinds and "reset" in kinds
    assert {m["recipient"] for m in data["mail_deliveries"]} == {"ana@example.com"}
    assert data["truncated"] == []

    text = res.text
    secrets = [
        *column(app, "SELECT password_hash FROM users WHERE password_hash IS NOT NULL"),
        *column(app, "SELECT token_hash FROM refresh_tokens"),
        *column(app, "SELECT token_hash FROM password_resets"),
        *column(app, "SELECT payload FROM task_outbox"),
        *reset_tokens,
        *column(app, "SELECT dedupe_key FROM mail_deliveries"),
        session["refresh_token"], token,
    ]
    assert column(app, "SELECT token_hash FROM password_resets")  # the test sees one
    for secret in secrets:
        assert secret and secret not in text
    for key in ("password", "hash", "token", "sealed", "dedupe"):
        assert key not in json.dumps(data["user"]) + json.dumps(data["sessions"])
    # nothing of another user
    for other in ("bia@example.com", "Bia Lima"):
        assert other not in json.dumps({k: v for k, v in data.items() if k != "audit_log"})
    assert bia["id"] not in {row["user_id"] for row in data["audit_log"]}
    assert "bia@example.com" not in text and "davi@example.com" not in text


def test_download_is_the_same_json_as_a_file(app):
    user_id, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    plain = app.get(EXPORT, headers=bearer(token), status=200)
    for flag in ("1", "true"):
        res = app.get(EXPORT, {"download": flag}, headers=bearer(token), status=200)
        assert res.headers["Content-Disposition"] == (
            f'attachment; filename="vexpenses-export-{user_id}.json"')
        assert res.headers["Cache-Control"] == "no-store"
        assert res.content_type == "application/json"
        assert res.json["message"] == "Success on export user"
        assert res.json["data"]["user"] == plain.json["data"]["user"]
    res = app.get(EXPORT, {"download": "0"}, headers=bearer(token), status=200)
    assert "Content-Disposition" not in res.headers
    res = app.get(EXPORT, {"download": "maybe"}, headers=bearer(token), status=422)
    assert "download" in res.json["errors"]


def test_export_needs_a_token(app):
    res = app.get(EXPORT, status=401)
    assert res.json["status"] is False
    app.get(EXPORT, headers=bearer("not-a-token"), status=401)


@pytest.mark.parametrize("backend", ["embedded", "redis"])
def test_export_is_rate_limited_per_user(make_app, backend, request):
    extra = {"vexpenses.ratelimit.export": "2 per hour"}
    if backend == "redis":
        extra["vexpenses.redis_url"] = request.getfixturevalue("redis_url")
    app = make_app(**extra)
    _, ana = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    _, bia = make_user(app.app.registry, email="bia@example.com", password=PASSWORD)
    app.get(EXPORT, headers=bearer(ana), status=200)
    app.get(EXPORT, {"download": "1"}, headers=bearer(ana), status=200)
    res = app.get(EXPORT, headers=bearer(ana), status=429)
    assert int(res.headers["Retry-After"]) >= 1
    assert res.json["message"] == "Too many attempts."
    app.get(EXPORT, headers=bearer(bia), status=200)  # another user's own count
    # a 422 is not counted
    app.get(EXPORT, {"download": "maybe"}, headers=bearer(bia), status=422)
    app.get(EXPORT, headers=bearer(bia), status=200)


def test_hook_user_exported_is_called_and_audited(app):
    user_id, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    seen = []

    class Listener:
        @hookimpl
        def vexpenses_user_exported(self, request, user):
            seen.append(user.id)

    app.app.registry.pm.register(Listener())
    app.get(EXPORT, headers=bearer(token), status=200)
    assert seen == [user_id]
    settle(app)
    data = app.get(EXPORT, headers=bearer(token), status=200).json["data"]
    exported = [row for row in data["audit_log"] if row["hook"] == "vexpenses_user_exported"]
    assert len(exported) == 1 and exported[0]["action"] == "Export user"
    # gathering the sections is no action of its own
    assert not [row for row in data["audit_log"] if row["hook"] == "vexpenses_export_user"]


def test_hook_export_user_section_two_plugins_claim_is_an_error(app, caplog):
    """A plugin bug: a 500 naming both claimants in the log, never a silent overwrite."""
    _, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)

    class Greedy:
        @hookimpl
        def vexpenses_export_user(self, user):
            return {"imports": []}

    app.app.registry.pm.register(Greedy(), name="greedy")
    res = app.get(EXPORT, headers=bearer(token), status=500)
    assert res.json["message"] == "Server error."
    conflicts = [r.exc_info[1] for r in caplog.records
                 if r.exc_info and isinstance(r.exc_info[1], ExportConflict)]
    assert len(conflicts) == 1
    assert "'imports' is given twice" in str(conflicts[0])
    assert "greedy" in str(conflicts[0]) and "csv_import" in str(conflicts[0])

    class Impostor:
        @hookimpl
        def vexpenses_export_user(self):
            return {"sessions": []}

    app.app.registry.pm.unregister(name="greedy")
    app.app.registry.pm.register(Impostor(), name="impostor")
    caplog.clear()
    app.get(EXPORT, headers=bearer(token), status=500)
    assert any("'sessions' is given twice" in str(r.exc_info[1])
               for r in caplog.records if r.exc_info)


def test_hook_export_user_long_sections_are_cut_and_named(app):
    _, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)

    class Chatty:
        @hookimpl
        def vexpenses_export_user(self, limit):
            return {"greetings": list(range(limit + 1)), "settings": {"theme": "dark"}}

    app.app.registry.pm.register(Chatty(), name="chatty")
    data = app.get(EXPORT, headers=bearer(token), status=200).json["data"]
    assert data["greetings"] == list(range(MAX_ROWS))
    assert data["settings"] == {"theme": "dark"}
    assert data["truncated"] == ["greetings"]
