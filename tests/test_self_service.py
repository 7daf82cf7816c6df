"""Self-service (issue 12): PATCH /api/v1/user/me and POST /api/v1/user/me/password,
on SQLite and MariaDB, with and without Redis (the identity cache and the limits)."""

import pytest
from sqlalchemy import select

from vexpenses_core import hookimpl
from vexpenses_core.accounts.ratelimit import hashed
from vexpenses_core.models import User
from vexpenses_core.testing import bearer, make_user

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
ME = "/api/v1/user/me"
CHANGE = "/api/v1/user/me/password"


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp):
    """The service without Redis, and with a real one (identity cache, shared limits)."""
    if request.param == "redis":
        return make_testapp(**{"vexpenses.redis_url": request.getfixturevalue("redis_url")})
    return make_testapp()


@pytest.fixture
def ana(app):
    """``(id, token)``: Ana, with a password and one login session."""
    return make_user(app.app.registry, email="ana@example.com", password=PASSWORD)


def stored(app, user_id):
    db = app.app.registry.dbsession_factory()
    try:
        return db.scalars(select(User).where(User.id == user_id)).one()
    finally:
        db.close()


def login(app, password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": "ana@example.com", "password": password}, status=status)


def change(app, token, current=PASSWORD, new=NEW_PASSWORD, status=200, **extra):
    body = {"current_password": current, "password": new, "password_confirmation": new,
            **extra}
    return app.post_json(CHANGE, body, headers=bearer(token), status=status)


# -- PATCH /me --------------------------------------------------------------


def test_update_name_and_birth_date(app, ana):
    user_id, token = ana
    before = app.get(ME, headers=bearer(token)).json["data"]  # and cached, with Redis
    body = app.patch_json(ME, {"name": "  Ana   Maria Souza ", "birth_date": "1990-05-17"},
                          headers=bearer(token), status=200).json
    assert body["status"] is True and body["message"] == "Success on update user"
    data = body["data"]
    assert set(data) == set(before)
    assert data["name"] == "Ana Maria Souza"  # folded, as register does
    assert data["birth_date"] == "1990-05-17"
    assert data["email"] == "ana@example.com" and data["id"] == user_id
    assert data["created_at"] == before["created_at"]
    assert data["updated_at"] >= before["updated_at"]
    # GET /me sees it at once: the cached identity was forgotten
    assert app.get(ME, headers=bearer(token)).json["data"] == data
    assert stored(app, user_id).name == "Ana Maria Souza"


def test_update_one_field_leaves_the_other(app, ana):
    user_id, token = ana
    app.patch_json(ME, {"birth_date": "2000-02-29"}, headers=bearer(token), status=200)
    data = app.patch_json(ME, {"name": "Ana B"}, headers=bearer(token), status=200).json["data"]
    assert data["birth_date"] == "2000-02-29" and data["name"] == "Ana B"


def test_the_user_list_filters_on_the_new_name(app, ana):
    _, token = ana
    assert app.get("/api/v1/user?name=Zelia", headers=bearer(token)).json["data"]["total"] == 0
    app.patch_json(ME, {"name": "Zelia Ramos"}, headers=bearer(token), status=200)
    page = app.get("/api/v1/user?name=Zelia", headers=bearer(token)).json["data"]
    assert page["total"] == 1 and page["data"][0]["name"] == "Zelia Ramos"


@pytest.mark.parametrize("body, field, message", [
    ({"name": "Al"}, "name", "The name field must be at least 3 characters."),
    ({"name": "x" * 256}, "name", "The name field must not be greater than 255 characters."),
    ({"name": "x" * 1_000_000}, "name",
     "The name field must not be greater than 255 characters."),
    ({"name": "   "}, "name", "The name field is required."),
    ({"name": None}, "name", "The name field is required."),
    ({"name": 123}, "name", "The name field must be a string."),
    ({"name": ["Ana Souza"]}, "name", "The name field must be a string."),
    ({"name": {"first": "Ana"}}, "name", "The name field must be a string."),
    ({"name": "Ana\u202eSouza"}, "name",
     "The name field must not contain control, invisible or text-direction characters."),
    ({"birth_date": "17/05/1990"}, "birth_date", "The birth date field must be a valid date."),
    ({"birth_date": "1990-02-30"}, "birth_date", "The birth date field must be a valid date."),
    ({"birth_date": "1800-01-01"}, "birth_date", "The birth date field must be a valid date."),
    ({"birth_date": "2999-01-01"}, "birth_date",
     "The birth date field must be a date before or equal to today."),
    ({"birth_date": 19900517}, "birth_date", "The birth date field must be a string."),
    ({"birth_date": None}, "birth_date", "The birth date field is required."),
])
def test_register_rules_apply(app, ana, body, field, message):
    user_id, token = ana
    response = app.patch_json(ME, body, headers=bearer(token), status=422)
    assert response.json["status"] is False
    assert response.json["errors"] == {field: [message]}
    user = stored(app, user_id)
    assert (user.name, user.birth_date) == ("Ana Souza", None)


def test_nothing_changes_when_one_field_is_wrong(app, ana):
    user_id, token = ana
    errors = app.patch_json(ME, {"name": "Ana Maria", "birth_date": "tomorrow"},
                            headers=bearer(token), status=422).json["errors"]
    assert list(errors) == ["birth_date"]
    assert stored(app, user_id).name == "Ana Souza"


@pytest.mark.parametrize("raw", [b"", b"{}", b"   "])
def test_an_empty_body_is_422(app, ana, raw):
    _, token = ana
    response = app.patch(ME, raw, headers={**bearer(token), "Content-Type": "application/json"},
                         status=422)
    assert response.json["errors"] == {
        "body": ["Send at least one of these fields: name, birth_date."]}


def test_the_email_cannot_be_changed_here(app, ana):
    user_id, token = ana
    errors = app.patch_json(ME, {"name": "Ana Maria", "email": "other@example.com"},
                            headers=bearer(token), status=422).json["errors"]
    assert errors == {"email": [
        "The email cannot be changed here; use POST /api/v1/user/me/email, which e-mails a "
        "confirmation link to the new address."]}
    user = stored(app, user_id)
    assert (user.email, user.name) == ("ana@example.com", "Ana Souza")


@pytest.mark.parametrize("field, value", [("is_admin", True), ("id", 1),
                                          ("password", "x" * 12), ("created_at", "2020-01-01")])
def test_other_fields_are_refused_not_ignored(app, ana, field, value):
    user_id, token = ana
    errors = app.patch_json(ME, {field: value}, headers=bearer(token),
                            status=422).json["errors"]
    assert errors == {field: [f"The {field} field cannot be changed here."]}
    assert stored(app, user_id).is_admin is False


def test_many_or_long_unknown_fields_are_counted_not_echoed(app, ana):
    _, token = ana
    body = {f"f{i:02}": 1 for i in range(15)} | {"k" * 5000: 1}
    errors = app.patch_json(ME, body, headers=bearer(token), status=422).json["errors"]
    assert len(errors) == 11 and "k" * 5000 not in errors
    assert errors["body"] == [
        "6 more unknown field(s) were sent; only name and birth_date can be changed here."]


@pytest.mark.parametrize("raw, content_type", [
    (b"not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"Ana"', "application/json"),
    (b"\xff\xfe", "application/json"),
    (b'{"name": NaN}', "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_422(app, ana, raw, content_type):
    _, token = ana
    response = app.patch(ME, raw, headers={**bearer(token), "Content-Type": content_type},
                         status=422)
    assert list(response.json["errors"]) == ["body"]


def test_a_form_body_works_too(app, ana):
    _, token = ana
    data = app.patch(ME, {"name": "Ana Form"}, headers=bearer(token), status=200).json["data"]
    assert data["name"] == "Ana Form"


@pytest.mark.parametrize("method, path", [("patch_json", ME), ("post_json", CHANGE)])
def test_both_routes_need_a_token(app, method, path):
    response = getattr(app, method)(path, {"name": "Ana Souza"}, status=401)
    assert response.json["status"] is False


def test_hook_profile_updated_names_the_fields(app, ana):
    user_id, token = ana
    calls = []

    class Spy:
        @hookimpl
        def vexpenses_profile_updated(self, user, fields):
            calls.append((user.id, user.name, fields))

    app.app.registry.pm.register(Spy())
    app.patch_json(ME, {"name": "Ana Maria", "birth_date": "1990-05-17"},
                   headers=bearer(token))
    app.patch_json(ME, {"name": "Al"}, headers=bearer(token), status=422)
    assert calls == [(user_id, "Ana Maria", ["birth_date", "name"])]


# -- POST /me/password ------------------------------------------------------


def test_change_password(app, ana):
    user_id, token = ana
    old_hash = stored(app, user_id).password_hash
    body = change(app, token).json
    assert body == {"status": True, "message": "Password changed successfully", "data": None}
    new_hash = stored(app, user_id).password_hash
    assert new_hash.startswith("$argon2id$") and new_hash != old_hash
    assert NEW_PASSWORD not in new_hash
    login(app, NEW_PASSWORD)
    assert login(app, PASSWORD, status=401).json["message"] == "Invalid credentials."


def test_the_current_session_stays_and_every_other_one_ends(app, ana):
    _, token = ana
    other = login(app).json["data"]
    third = login(app).json["data"]
    for t in (token, other["token"], third["token"]):  # cached, with Redis
        app.get(ME, headers=bearer(t), status=200)
    change(app, other["token"])
    app.get(ME, headers=bearer(other["token"]), status=200)
    app.get(ME, headers=bearer(token), status=401)
    app.get(ME, headers=bearer(third["token"]), status=401)
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": third["refresh_token"]},
                  status=401)
    # the kept session still refreshes
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": other["refresh_token"]},
                  status=201)
    sessions = app.get("/api/v1/user/sessions", headers=bearer(other["token"])).json["data"]
    assert [s["current"] for s in sessions] == [True]


def test_hook_password_changed_counts_the_other_sessions(app, ana):
    user_id, token = ana
    login(app)
    calls = []

    class Spy:
        @hookimpl
        def vexpenses_password_changed(self, user, sessions_ended):
            calls.append((user.id, sessions_ended))

        @hookimpl
        def vexpenses_password_reset_completed(self, user):
            calls.append("reset")

    app.app.registry.pm.register(Spy())
    change(app, token, current="wrong password", status=422)
    assert calls == []
    change(app, token)
    assert calls == [(user_id, 1)]


def test_a_wrong_current_password_is_422_on_that_field(app, ana):
    user_id, token = ana
    old_hash = stored(app, user_id).password_hash
    other = login(app).json["data"]["token"]
    response = change(app, token, current="not my password", status=422)
    assert response.json["errors"] == {"current_password": ["The current password is incorrect."]}
    assert stored(app, user_id).password_hash == old_hash
    app.get(ME, headers=bearer(other), status=200)  # nothing ended
    login(app)


@pytest.mark.parametrize("extra, field, message", [
    ({"password": "short", "password_confirmation": "short"}, "password",
     "The password field must be at least 8 characters."),
    ({"password_confirmation": "something else"}, "password",
     "The password field confirmation does not match."),
    ({"password": "x" * 1025, "password_confirmation": "x" * 1025}, "password",
     "The password field must not be greater than 1024 characters."),
    ({"current_password": None}, "current_password", "The current password field is required."),
    ({"current_password": 12345678}, "current_password",
     "The current password field must be a string."),
    ({"current_password": "x" * 1_000_000}, "current_password",
     "The current password field must not be greater than 1024 characters."),
])
def test_new_password_rules_apply(app, ana, extra, field, message):
    user_id, token = ana
    old_hash = stored(app, user_id).password_hash
    body = {"current_password": PASSWORD, "password": NEW_PASSWORD,
            "password_confirmation": NEW_PASSWORD, **extra}
    response = app.post_json(CHANGE, body, headers=bearer(token), status=422)
    assert response.json["errors"][field] == [message]
    assert stored(app, user_id).password_hash == old_hash


def test_a_missing_body_names_every_field(app, ana):
    _, token = ana
    errors = app.post_json(CHANGE, {}, headers=bearer(token), status=422).json["errors"]
    assert set(errors) == {"current_password", "password"}


def test_an_imported_user_without_a_password_cannot_change_it_here(app):
    _, token = make_user(app.app.registry, email="ana@example.com")
    errors = change(app, token, current="anything at all", status=422).json["errors"]
    assert errors == {"current_password": ["The current password is incorrect."]}


def test_wrong_current_passwords_count_towards_the_login_limit(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.login_account": "3 per hour"})
    _, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    for _ in range(3):
        change(app, token, current="a guess at it", status=422)
    # the account's login limit is spent: by this route, and for logins
    limited = change(app, token, status=429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert login(app, status=429).json["message"] == "Too many attempts."


def test_failed_logins_slow_the_route_down_too(make_testapp):
    app = make_testapp(**{"vexpenses.ratelimit.login_account": "2 per hour"})
    _, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    for _ in range(2):
        login(app, "a guess at it", status=401)
    assert change(app, token, status=429).json["message"] == "Too many attempts."


def test_wrong_current_passwords_are_failed_logins(make_testapp, redis_url):
    """Each wrong guess counts for the escalating delay, as a failed login does;
    the right password clears the count, as a login does (docs/security.md)."""
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    _, token = make_user(registry, email="ana@example.com", password=PASSWORD)
    prefix = registry.settings["vexpenses.redis_prefix"]
    key = f"{prefix}login-failures:{hashed('ana@example.com')}"
    change(app, token, current="a guess at it", status=422)
    change(app, token, current="another guess", status=422)
    assert int(registry.redis.hget(key, "count")) == 2
    change(app, token)
    assert not registry.redis.exists(key)
