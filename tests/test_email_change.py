"""Changing the account's address (issue 12): POST /me/email sends a link to the new
address, POST /confirm-email moves the account; on SQLite and MariaDB, with and
without Redis (the identity cache and the limits)."""

import datetime
import urllib.parse

import pytest
from sqlalchemy import select, update

from vexpenses_core import hookimpl
from vexpenses_core.accounts.ratelimit import hashed
from vexpenses_core.accounts.users import UserService
from vexpenses_core.models import EMAIL_CHANGE, AccountToken, User
from vexpenses_core.testing import bearer, make_user

PASSWORD = "correct horse battery"
CHANGE = "/api/v1/user/me/email"
CONFIRM = "/api/v1/user/confirm-email"
ME = "/api/v1/user/me"


class Spy:
    def __init__(self):
        self.requested = []  # (user id, user.email at the call, new_email, confirm_url)
        self.changed = []  # (user id, user.email, email_verified_at, old_email)
        self.verifications = []

    @hookimpl
    def vexpenses_email_change_requested(self, request, user, new_email, confirm_url):
        assert request is not None
        self.requested.append((user.id, user.email, new_email, confirm_url))

    @hookimpl
    def vexpenses_email_changed(self, request, user, old_email):
        assert request is not None
        self.changed.append((user.id, user.email, user.email_verified_at, old_email))

    @hookimpl
    def vexpenses_email_verification_requested(self, verify_url):
        self.verifications.append(verify_url)

    def token(self, index=-1):
        return token_of(self.requested[index][3])


def token_of(url):
    return urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["token"][0]


def with_spy(app):
    app.spy = Spy()
    app.app.registry.pm.register(app.spy)
    return app


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp):
    if request.param == "redis":
        return with_spy(make_testapp(**{"vexpenses.redis_url":
                                        request.getfixturevalue("redis_url"),
                                        "vexpenses.tasks.broker": "inprocess"}))
    return with_spy(make_testapp())


@pytest.fixture
def ana(app):
    """``(id, token)``: Ana, with a password and one login session."""
    return make_user(app.app.registry, email="ana@example.com", password=PASSWORD)


def ask(app, token, email="ana.new@example.com", current=PASSWORD, status=202):
    return app.post_json(CHANGE, {"email": email, "current_password": current},
                         headers=bearer(token), status=status)


def confirm(app, raw, status=200):
    return app.post_json(CONFIRM, {"token": raw}, status=status)


def login(app, email, password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                         status=status)


def stored(app, user_id):
    db = app.app.registry.dbsession_factory()
    try:
        return db.get(User, user_id)
    finally:
        db.close()


# -- asking -------------------------------------------------------------------------------


def test_hook_email_change_requested_with_the_link_for_the_new_address(app, ana):
    user_id, token = ana
    body = ask(app, token, email="  Ana.New@Example.com ").json
    assert body == {"status": True, "message": "Confirmation sent to the new address",
                    "data": None}
    assert len(app.spy.requested) == 1
    called_id, current, new_email, url = app.spy.requested[0]
    # the user still holds the old address; the new one is canonical
    assert (called_id, current, new_email) == (user_id, "ana@example.com", "ana.new@example.com")
    assert url.startswith("http://localhost/confirm-email?token=")
    assert len(app.spy.token()) >= 40
    db = app.app.registry.dbsession_factory()
    try:
        row = db.scalars(select(AccountToken)).one()
    finally:
        db.close()
    assert (row.purpose, row.new_email) == (EMAIL_CHANGE, "ana.new@example.com")
    assert row.token_hash != app.spy.token() and row.expires_at - row.created_at == \
        datetime.timedelta(minutes=60)


def test_the_address_changes_only_when_the_link_is_used(app, ana):
    user_id, token = ana
    ask(app, token)
    assert stored(app, user_id).email == "ana@example.com"
    assert app.get(ME, headers=bearer(token)).json["data"]["email"] == "ana@example.com"
    login(app, "ana@example.com")
    login(app, "ana.new@example.com", status=401)
    assert app.spy.changed == []


def test_hook_email_changed_once_confirmed(app, ana):
    user_id, token = ana
    app.get(ME, headers=bearer(token))  # cached, with Redis
    ask(app, token)
    body = confirm(app, app.spy.token()).json
    assert body["status"] is True and body["message"] == "Email confirmed successfully"
    data = body["data"]
    assert set(data) == {"id", "name", "email", "birth_date", "created_at", "updated_at",
                         "email_verified_at"}
    assert (data["id"], data["email"]) == (user_id, "ana.new@example.com")
    assert data["email_verified_at"] is not None  # the link reached the new address
    assert len(app.spy.changed) == 1
    called_id, email, verified_at, old_email = app.spy.changed[0]
    assert (called_id, email, old_email) == (user_id, "ana.new@example.com", "ana@example.com")
    assert verified_at is not None
    # the session goes on, and sees the new address at once (the cache forgot it)
    assert app.get(ME, headers=bearer(token)).json["data"] == data
    login(app, "ana.new@example.com")
    login(app, "ana@example.com", status=401)
    assert stored(app, user_id).email == "ana.new@example.com"


def test_the_user_list_finds_the_new_address(app, ana):
    _, token = ana
    listed = app.get("/api/v1/user?email=ana.new", headers=bearer(token)).json["data"]
    assert listed["total"] == 0
    ask(app, token)
    confirm(app, app.spy.token())
    listed = app.get("/api/v1/user?email=ana.new", headers=bearer(token)).json["data"]
    assert listed["total"] == 1


def test_the_link_works_once(app, ana):
    _, token = ana
    ask(app, token)
    confirm(app, app.spy.token())
    errors = confirm(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"token": ["This e-mail change link has already been used."]}


def test_the_link_expires(app, ana):
    user_id, token = ana
    ask(app, token)
    db = app.app.registry.dbsession_factory()
    try:
        db.execute(update(AccountToken).values(
            expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)))
        db.commit()
    finally:
        db.close()
    errors = confirm(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"token": ["This e-mail change link has expired. Please ask for a new one."]}
    assert stored(app, user_id).email == "ana@example.com"


def test_a_new_request_retires_the_earlier_link(app, ana):
    user_id, token = ana
    ask(app, token, email="first@example.com")
    ask(app, token, email="second@example.com")
    confirm(app, app.spy.token(0), status=422)
    assert confirm(app, app.spy.token(1)).json["data"]["email"] == "second@example.com"


@pytest.mark.parametrize("body, message", [
    ({"token": "nope"}, "This e-mail change token is invalid."),
    ({"token": "x" * 200}, "This e-mail change token is invalid."),
    ({"token": "x" * 201}, "The token field must not be greater than 200 characters."),
    ({"token": ""}, "The token field is required."),
    ({"token": ["x"]}, "The token field must be a string."),
    ({}, "The token field is required."),
])
def test_bad_tokens_are_422_on_token(app, ana, body, message):
    user_id, token = ana
    ask(app, token)
    errors = app.post_json(CONFIRM, body, status=422).json["errors"]
    assert errors == {"token": [message]}
    assert stored(app, user_id).email == "ana@example.com"


def test_a_verification_link_does_not_confirm_a_change(app):
    app.post_json("/api/v1/user/register", {
        "name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
    errors = confirm(app, token_of(app.spy.verifications[0]), status=422).json["errors"]
    assert errors == {"token": ["This e-mail change token is invalid."]}


def test_a_confirmed_change_retires_the_old_addresses_verification_link(app):
    app.post_json("/api/v1/user/register", {
        "name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
    token = login(app, "ana@example.com").json["data"]["token"]
    ask(app, token)
    confirm(app, app.spy.token())
    errors = app.post_json("/api/v1/user/verify-email",
                           {"token": token_of(app.spy.verifications[0])},
                           status=422).json["errors"]
    assert errors == {"token": [
        "This e-mail verification link has expired. Please ask for a new one."]}


# -- refusals when asking -------------------------------------------------------------------


def test_a_wrong_password_is_422_and_sends_nothing(app, ana):
    _, token = ana
    errors = ask(app, token, current="not my password", status=422).json["errors"]
    assert errors == {"current_password": ["The current password is incorrect."]}
    assert app.spy.requested == []


@pytest.mark.parametrize("email, message", [
    ("ana@example.com", "The new email must be different from the current one."),
    ("ANA@Example.COM", "The new email must be different from the current one."),
    ("bia@example.com", "The email has already been taken."),
    ("BIA@example.com ", "The email has already been taken."),
    ("not an address", "The email field must be a valid email address."),
    ("", "The email field is required."),
    (None, "The email field is required."),
])
def test_the_new_address_must_be_free_and_valid(app, ana, email, message):
    make_user(app.app.registry, email="bia@example.com", name="Bia Lima")
    _, token = ana
    errors = ask(app, token, email=email, status=422).json["errors"]
    assert errors == {"email": [message]}
    assert app.spy.requested == []


def test_a_missing_body_names_both_fields(app, ana):
    _, token = ana
    errors = app.post_json(CHANGE, {}, headers=bearer(token), status=422).json["errors"]
    assert set(errors) == {"email", "current_password"}


def test_asking_needs_a_login(app):
    response = app.post_json(CHANGE, {"email": "x@example.com", "current_password": PASSWORD},
                             status=401)
    assert response.json["status"] is False


def test_asking_is_limited_per_user(app, ana):
    _, token = ana
    other = login(app, "ana@example.com").json["data"]["token"]
    ask(app, token, email="ana@example.com", status=422)  # a refused request is not counted
    for i in range(3):  # vexpenses.ratelimit.email_change: 3 per hour
        ask(app, token, email=f"new{i}@example.com")
    limited = ask(app, other, email="new9@example.com", status=429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert len(app.spy.requested) == 3


def test_wrong_passwords_count_towards_the_login_limit(make_testapp, redis_url):
    app = with_spy(make_testapp(**{"vexpenses.redis_url": redis_url,
                                   "vexpenses.ratelimit.login_account": "3 per hour"}))
    _, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    for _ in range(3):
        ask(app, token, current="a guess at it", status=422)
    # the account's login limit is spent: by this route, and for logins
    ask(app, token, status=429)
    assert login(app, "ana@example.com", status=429).json["message"] == "Too many attempts."


def test_wrong_passwords_are_failed_logins(make_testapp, redis_url):
    app = with_spy(make_testapp(**{"vexpenses.redis_url": redis_url}))
    registry = app.app.registry
    _, token = make_user(registry, email="ana@example.com", password=PASSWORD)
    prefix = registry.settings["vexpenses.redis_prefix"]
    key = f"{prefix}login-failures:{hashed('ana@example.com')}"
    ask(app, token, current="a guess at it", status=422)
    ask(app, token, current="another guess", status=422)
    assert int(registry.redis.hget(key, "count")) == 2
    ask(app, token)
    assert not registry.redis.exists(key)


def test_an_imported_user_without_a_password_cannot_ask(app):
    _, token = make_user(app.app.registry, email="ana@example.com")
    errors = ask(app, token, current="anything at all", status=422).json["errors"]
    assert errors == {"current_password": ["The current password is incorrect."]}


# -- refusals when confirming ----------------------------------------------------------------


def test_an_address_taken_meanwhile_is_422_at_confirmation(app, ana):
    user_id, token = ana
    ask(app, token)
    app.post_json("/api/v1/user/register", {
        "name": "Someone Else", "email": "ana.new@example.com", "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
    errors = confirm(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"email": ["The email has already been taken."]}
    user = stored(app, user_id)
    assert user.email == "ana@example.com" and user.email_verified_at is None
    assert app.spy.changed == []


def test_an_address_taken_at_the_same_moment_is_422_not_500(app, ana, monkeypatch):
    """The unique index decides when the check passed but another row won the race."""
    user_id, token = ana
    ask(app, token)
    make_user(app.app.registry, email="ana.new@example.com", name="Racer")
    # The check ran before the other transaction committed: it found no one.
    monkeypatch.setattr(UserService, "by_email", lambda self, email: None)
    errors = confirm(app, app.spy.token(), status=422).json["errors"]
    assert errors == {"email": ["The email has already been taken."]}
    assert stored(app, user_id).email == "ana@example.com"


def test_a_disabled_account_cannot_confirm(app, ana):
    user_id, token = ana
    ask(app, token)
    db = app.app.registry.dbsession_factory()
    try:
        db.execute(update(User).where(User.id == user_id)
                   .values(disabled_at=datetime.datetime.now(datetime.UTC)))
        db.commit()
    finally:
        db.close()
    response = confirm(app, app.spy.token(), status=403)
    assert response.json["errors"] == "This account is disabled."
    assert stored(app, user_id).email == "ana@example.com"
