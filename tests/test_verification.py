"""E-mail verification (issue 12): the link at registration, POST /verify-email,
resend with and without a login, and the login refusals (unverified when
required, disabled); on SQLite and MariaDB, with and without Redis."""

import datetime
import os
import subprocess
import sys
import urllib.parse

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select, update

from vexpenses_core import hookimpl
from vexpenses_core.models import VERIFY, AccountToken, AuthSession, User
from vexpenses_core.tasks.api import task_name
from vexpenses_core.testing import bearer, make_user, write_ini

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
VERIFY_URL = "/api/v1/user/verify-email"
RESEND = "/api/v1/user/verify-email/resend"
ME = "/api/v1/user/me"
NOT_VERIFIED = ("This e-mail address is not verified yet. Open the link in the verification "
                "e-mail we sent, or ask for a new one with POST /api/v1/user/verify-email/resend.")


class Spy:
    """Records the calls of the address hooks, as the mailer would get them."""

    def __init__(self):
        self.requested = []  # (user id, user email, verify_url)
        self.verified = []  # (user id, email_verified_at)
        self.resets = []

    @hookimpl
    def vexpenses_email_verification_requested(self, request, user, verify_url):
        assert request is not None
        self.requested.append((user.id, user.email, verify_url))

    @hookimpl
    def vexpenses_email_verified(self, request, user):
        assert request is not None
        self.verified.append((user.id, user.email_verified_at))

    @hookimpl
    def vexpenses_password_reset_requested(self, reset_url):
        self.resets.append(reset_url)

    def token(self, index=-1):
        return token_of(self.requested[index][2])


def token_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]


def with_spy(app):
    spy = Spy()
    app.app.registry.pm.register(spy)
    app.spy = spy
    return app


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp):
    """The service without Redis, and with a real one (identity cache, shared limits)."""
    if request.param == "redis":
        # Tasks still run in process, so that a test can drain them.
        return with_spy(make_testapp(**{"vexpenses.redis_url":
                                        request.getfixturevalue("redis_url"),
                                        "vexpenses.tasks.broker": "inprocess"}))
    return with_spy(make_testapp())


@pytest.fixture
def strict(make_testapp, redis_url):
    """vexpenses.accounts.require_verified_email on, with Redis."""
    return with_spy(make_testapp(**{"vexpenses.redis_url": redis_url,
                                    "vexpenses.tasks.broker": "inprocess",
                                    "vexpenses.accounts.require_verified_email": "true"}))


def register(app, email="ana@example.com", status=201):
    return app.post_json("/api/v1/user/register", {
        "name": "Ana Souza", "email": email, "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=status)


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                         status=status)


def verify(app, token, status=200):
    return app.post_json(VERIFY_URL, {"token": token}, status=status)


def stored(app, email="ana@example.com"):
    db = app.app.registry.dbsession_factory()
    try:
        return db.scalars(select(User).where(User.email == email)).one()
    finally:
        db.close()


def change_rows(app, statement):
    db = app.app.registry.dbsession_factory()
    try:
        db.execute(statement)
        db.commit()
    finally:
        db.close()


def session_count(app):
    db = app.app.registry.dbsession_factory()
    try:
        return db.scalar(select(func.count()).select_from(AuthSession))
    finally:
        db.close()


def disable(app, email="ana@example.com"):
    """Set disabled_at directly, without ending sessions: what the login must check alone."""
    change_rows(app, update(User).where(User.email == email)
                .values(disabled_at=datetime.datetime.now(datetime.UTC)))


# -- the link at registration -------------------------------------------------------


def test_hook_email_verification_requested_at_registration(app):
    user_id = register(app).json["data"]["id"]
    assert len(app.spy.requested) == 1
    called_id, email, url = app.spy.requested[0]
    assert (called_id, email) == (user_id, "ana@example.com")
    assert url.startswith("http://localhost/verify-email?token=")
    assert len(app.spy.token()) >= 40
    # only the digest is stored
    db = app.app.registry.dbsession_factory()
    try:
        row = db.scalars(select(AccountToken)).one()
    finally:
        db.close()
    assert row.purpose == VERIFY and row.token_hash != app.spy.token()
    assert app.spy.token() not in row.token_hash


def test_a_new_user_is_unverified_until_the_link_is_used(app):
    register(app)
    token = login(app).json["data"]["token"]  # require_verified_email is off by default
    assert app.get(ME, headers=bearer(token)).json["data"]["email_verified_at"] is None
    body = verify(app, app.spy.token()).json
    assert body == {"status": True, "message": "Email verified successfully", "data": None}
    # the cached identity was forgotten: /me sees it at once
    verified_at = app.get(ME, headers=bearer(token)).json["data"]["email_verified_at"]
    assert verified_at is not None and verified_at.endswith("Z")
    assert stored(app).email_verified_at is not None


def test_hook_email_verified_is_called_once_with_the_user(app):
    user_id = register(app).json["data"]["id"]
    assert app.spy.verified == []
    verify(app, app.spy.token())
    assert len(app.spy.verified) == 1
    called_id, verified_at = app.spy.verified[0]
    assert called_id == user_id and verified_at is not None
    verify(app, app.spy.token(), status=422)
    assert len(app.spy.verified) == 1


def test_the_link_works_once(app):
    register(app)
    verify(app, app.spy.token())
    errors = verify(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"token": ["This e-mail verification link has already been used."]}


def test_the_link_expires(make_testapp):
    app = with_spy(make_testapp(**{"vexpenses.verify_token_minutes": "5"}))
    register(app)
    db = app.app.registry.dbsession_factory()
    try:
        row = db.scalars(select(AccountToken)).one()
        lifetime = row.expires_at - row.created_at
    finally:
        db.close()
    assert lifetime == datetime.timedelta(minutes=5)
    change_rows(app, update(AccountToken).values(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)))
    errors = verify(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"token": [
        "This e-mail verification link has expired. Please ask for a new one."]}
    assert stored(app).email_verified_at is None


@pytest.mark.parametrize("body, message", [
    ({"token": "nope"}, "This e-mail verification token is invalid."),
    ({"token": "x" * 200}, "This e-mail verification token is invalid."),
    ({"token": "x" * 201}, "The token field must not be greater than 200 characters."),
    ({"token": "x" * 60_000}, "The token field must not be greater than 200 characters."),
    ({"token": ""}, "The token field is required."),
    ({"token": None}, "The token field is required."),
    ({"token": 12345}, "The token field must be a string."),
    ({}, "The token field is required."),
])
def test_bad_tokens_are_422_on_token(app, body, message):
    register(app)
    response = app.post_json(VERIFY_URL, body, status=422)
    assert response.json["status"] is False
    assert response.json["errors"] == {"token": [message]}
    assert stored(app).email_verified_at is None


@pytest.mark.parametrize("path", [VERIFY_URL, RESEND, "/api/v1/user/confirm-email"])
def test_the_anonymous_routes_refuse_a_large_body_unread(app, path):
    response = app.post_json(path, {"token": "x" * 100_000, "email": "a@example.com"},
                             status=413)
    assert response.json["status"] is False


def test_a_password_reset_token_does_not_verify_and_a_verify_token_does_not_reset(app):
    register(app)
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    app.app.registry.queue.drain()
    reset_token = token_of(app.spy.resets[0])
    verify(app, reset_token, status=422)
    assert stored(app).email_verified_at is None
    errors = app.post_json("/api/v1/user/recover-password", {
        "token": app.spy.token(), "email": "ana@example.com", "password": NEW_PASSWORD,
        "password_confirmation": NEW_PASSWORD}, status=422).json["errors"]
    assert errors == {"token": ["This password reset token is invalid."]}
    # each still works for its own purpose
    verify(app, app.spy.token())
    app.post_json("/api/v1/user/recover-password", {
        "token": reset_token, "email": "ana@example.com", "password": NEW_PASSWORD,
        "password_confirmation": NEW_PASSWORD}, status=200)


def test_a_verification_link_does_not_retire_a_reset_link(app):
    register(app)
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    app.app.registry.queue.drain()
    token = login(app).json["data"]["token"]
    app.post(RESEND, headers=bearer(token), status=202)  # a new verification link
    app.post_json("/api/v1/user/recover-password", {
        "token": token_of(app.spy.resets[0]), "email": "ana@example.com",
        "password": NEW_PASSWORD, "password_confirmation": NEW_PASSWORD}, status=200)


def test_a_disabled_account_cannot_verify(app):
    register(app)
    disable(app)
    response = verify(app, app.spy.token(), status=403)
    assert response.json["errors"] == "This account is disabled."
    assert stored(app).email_verified_at is None


# -- resend with a login ---------------------------------------------------------------


def test_resend_with_a_login_sends_a_new_link_and_retires_the_old(app):
    register(app)
    first = app.spy.token()
    token = login(app).json["data"]["token"]
    body = app.post(RESEND, headers=bearer(token), status=202).json
    assert body == {"status": True, "message": "Verification e-mail sent", "data": None}
    assert len(app.spy.requested) == 2
    second = app.spy.token()
    assert second != first
    errors = verify(app, first, status=422).json["errors"]
    assert errors == {"token": [
        "This e-mail verification link has expired. Please ask for a new one."]}
    verify(app, second)


def test_resend_for_a_verified_user_is_422_and_sends_nothing(app):
    register(app)
    verify(app, app.spy.token())
    token = login(app).json["data"]["token"]
    errors = app.post(RESEND, headers=bearer(token), status=422).json["errors"]
    assert errors == {"email": ["This e-mail address is already verified."]}
    assert len(app.spy.requested) == 1


def test_resend_with_a_login_is_limited_per_user(app):
    register(app)
    token = login(app).json["data"]["token"]
    other = login(app).json["data"]["token"]  # another session of the same user
    for _ in range(3):  # vexpenses.ratelimit.verify_resend: 3 per hour
        app.post(RESEND, headers=bearer(token), status=202)
    limited = app.post(RESEND, headers=bearer(other), status=429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(app.spy.requested) == 4  # registration's own link is not counted
    # another user is not affected
    register(app, "bia@example.com")
    bia = login(app, "bia@example.com").json["data"]["token"]
    app.post(RESEND, headers=bearer(bia), status=202)


def test_resend_with_a_login_still_checks_a_body_sent(app):
    register(app)
    token = login(app).json["data"]["token"]
    response = app.post(RESEND, b"not json", headers={
        **bearer(token), "Content-Type": "application/json"}, status=422)
    assert list(response.json["errors"]) == ["body"]
    errors = app.post_json(RESEND, {"email": "nope"}, headers=bearer(token),
                           status=422).json["errors"]
    assert errors == {"email": ["The email field must be a valid email address."]}
    assert len(app.spy.requested) == 1


def test_resend_with_a_dead_token_is_401(app):
    register(app)
    response = app.post_json(RESEND, {"email": "ana@example.com"},
                             headers=bearer("not.a.token"), status=401)
    assert response.headers["WWW-Authenticate"] == "Bearer"
    app.app.registry.queue.drain()
    assert len(app.spy.requested) == 1


# -- resend without a login --------------------------------------------------------------


def resend(app, email, status=202, **kw):
    response = app.post_json(RESEND, {"email": email}, status=status, **kw)
    app.app.registry.queue.drain()  # the link is made in a task
    return response


def test_anonymous_resend_answers_the_same_for_every_address(app):
    register(app)
    register(app, "bia@example.com")
    verify(app, app.spy.token())  # bia is verified
    answers = [resend(app, email).json for email in
               ("ana@example.com", "ANA@example.com ", "bia@example.com", "nobody@example.com")]
    assert all(answer == {"status": True, "message": "Verification e-mail sent", "data": None}
               for answer in answers)
    # a link for ana only (twice: both spellings are her address), none for bia or nobody
    sent = [(email, url) for _, email, url in app.spy.requested[2:]]
    assert [email for email, _ in sent] == ["ana@example.com", "ana@example.com"]
    verify(app, token_of(sent[-1][1]))
    assert stored(app).email_verified_at is not None


def test_anonymous_resend_works_where_login_is_refused(strict):
    register(strict)
    refused = login(strict, status=403)
    assert refused.json["errors"] == NOT_VERIFIED
    resend(strict, "ana@example.com")
    verify(strict, strict.spy.token())
    login(strict)


def test_anonymous_resend_is_limited_per_address(app):
    register(app)
    for _ in range(3):
        resend(app, "ana@example.com")
    limited = resend(app, "ana@example.com", status=429)
    assert int(limited.headers["Retry-After"]) >= 1
    # an unknown address is limited the same way, so the limit reveals nothing
    for _ in range(3):
        resend(app, "ghost@example.com")
    resend(app, "ghost@example.com", status=429)


def test_anonymous_resend_is_limited_per_client_address(make_testapp):
    app = with_spy(make_testapp(**{"vexpenses.ratelimit.forgot_ip": "2 per hour"}))
    resend(app, "a@example.com")
    resend(app, "b@example.com")
    resend(app, "c@example.com", status=429)
    resend(app, "c@example.com", extra_environ={"REMOTE_ADDR": "10.0.0.9"})


@pytest.mark.parametrize("body, message", [
    ({}, "The email field is required."),
    ({"email": "not an address"}, "The email field must be a valid email address."),
    ({"email": ["ana@example.com"]}, "The email field must be a string."),
])
def test_anonymous_resend_needs_an_address(app, body, message):
    errors = app.post_json(RESEND, body, status=422).json["errors"]
    assert errors == {"email": [message]}


def test_anonymous_resend_does_the_same_work_for_every_address(make_testapp, redis_url):
    """Before it answers: the lookup waits for the task (here, in the Redis stream)."""
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    make_user(registry, email="ana@example.com")
    make_user(registry, email="bia@example.com")
    change_rows(app, update(User).where(User.email == "bia@example.com")
                .values(email_verified_at=datetime.datetime.now(datetime.UTC)))

    def statements(email):
        seen = []

        def record(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        event.listen(registry.dbengine, "before_cursor_execute", record)
        try:
            app.post_json(RESEND, {"email": email}, status=202)
        finally:
            event.remove(registry.dbengine, "before_cursor_execute", record)
        return seen

    unverified = statements("ana@example.com")
    assert statements("bia@example.com") == unverified  # verified already
    assert statements("nobody@example.com") == unverified  # no account


def test_anonymous_resend_queues_the_same_task_for_every_address(app):
    register(app)
    queued = []
    queue = app.app.registry.queue
    original = queue.enqueue

    def spy(request, task, *args, **kwargs):
        queued.append((task_name(task), args))
        return original(request, task, *args, **kwargs)

    queue.enqueue = spy
    try:
        resend(app, "ana@example.com")
        resend(app, "nobody@example.com")
    finally:
        queue.enqueue = original
    assert queued == [("accounts.verification", ("ana@example.com",)),
                      ("accounts.verification", ("nobody@example.com",))]


# -- login refusals ------------------------------------------------------------------------


def test_unverified_login_is_403_only_when_verification_is_required(strict):
    register(strict)
    before = session_count(strict)
    wrong = login(strict, password="not the password", status=401)
    assert wrong.json["message"] == "Invalid credentials."  # nothing told without the password
    refused = login(strict, status=403).json
    assert refused == {"status": False, "message": "Your email address is not verified.",
                       "errors": NOT_VERIFIED}
    assert session_count(strict) == before  # no session was started
    verify(strict, strict.spy.token())
    assert login(strict).json["message"] == "Success on login user"


def test_unverified_login_succeeds_by_default(app):
    register(app)
    login(app)


def test_disabled_login_is_403_only_with_the_right_password(app):
    register(app)
    verify(app, app.spy.token())
    disable(app)
    before = session_count(app)
    assert login(app, password="not the password", status=401).json["message"] == \
        "Invalid credentials."
    refused = login(app, status=403).json
    assert refused == {"status": False, "message": "This account is disabled.",
                       "errors": "This account is disabled."}
    assert session_count(app) == before


def test_a_disabled_session_cannot_refresh(app):
    register(app)
    data = login(app).json["data"]
    disable(app)  # without ending the sessions: the refresh checks on its own
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": data["refresh_token"]},
                  status=401)
    app.get("/api/v1/user/refresh-token", headers=bearer(data["token"]), status=401)


# -- password reset ---------------------------------------------------------------------------


def forgot(app, email="ana@example.com"):
    app.post_json("/api/v1/user/forgot-password", {"email": email}, status=200)
    app.app.registry.queue.drain()


def recover(app, reset_url, status=200):
    query = urllib.parse.parse_qs(urllib.parse.urlparse(reset_url).query)
    return app.post_json("/api/v1/user/recover-password", {
        "token": query["token"][0], "email": query["email"][0], "password": NEW_PASSWORD,
        "password_confirmation": NEW_PASSWORD}, status=status)


def test_a_password_reset_proves_the_address(strict):
    register(strict)
    forgot(strict)
    recover(strict, strict.spy.resets[0])
    assert stored(strict).email_verified_at is not None
    login(strict, password=NEW_PASSWORD)


def test_an_imported_user_is_verified_by_setting_a_password(app):
    make_user(app.app.registry, email="imported@example.com")  # no password, as imported
    assert stored(app, "imported@example.com").email_verified_at is None
    forgot(app, "imported@example.com")
    recover(app, app.spy.resets[0])
    assert stored(app, "imported@example.com").email_verified_at is not None


def test_a_reset_keeps_an_earlier_verification_date(app):
    register(app)
    verify(app, app.spy.token())
    verified_at = stored(app).email_verified_at
    forgot(app)
    recover(app, app.spy.resets[0])
    assert stored(app).email_verified_at == verified_at


def test_a_disabled_user_gets_no_reset_link(app):
    register(app)
    disable(app)
    assert forgot(app) is None and app.spy.resets == []


def test_a_disabled_user_cannot_use_an_earlier_reset_link(app):
    register(app)
    forgot(app)
    disable(app)
    old_hash = stored(app).password_hash
    response = recover(app, app.spy.resets[0], status=403)
    assert response.json["errors"] == "This account is disabled."
    assert stored(app).password_hash == old_hash


# -- create-admin -------------------------------------------------------------------------------


def test_create_admin_marks_the_admin_verified(tmp_path):
    """The operator vouches for the address: else require_verified_email locks them out."""
    from vexpenses_core.testing import JWT_SECRET

    db = tmp_path / "admin.sqlite"
    env = dict(os.environ, VEXPENSES_DATABASE_URL=f"sqlite:///{db}", VEXPENSES_PLUGINS="",
               VEXPENSES_JWT_SECRET=JWT_SECRET, VEXPENSES_ADMIN_PASSWORD="s3cret-admin-pass")
    ini = str(write_ini(tmp_path))
    command = str(os.path.join(os.path.dirname(sys.executable), "vexpenses"))
    assert subprocess.run([command, "migrate", ini], env=env, timeout=120).returncode == 0
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO users (name, email, is_admin, created_at, updated_at) VALUES "
            "('Old User', 'old@example.com', 0, '2024-01-01 00:00:00', '2024-01-01 00:00:00')")
    for email in ("boss@example.com", "old@example.com"):  # created, and promoted
        result = subprocess.run([command, "create-admin", ini, "--email", email],
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT email, is_admin, email_verified_at FROM users ORDER BY email").all()
    engine.dispose()
    assert [(email, bool(admin), verified is not None) for email, admin, verified in rows] == [
        ("boss@example.com", True, True), ("old@example.com", True, True)]
