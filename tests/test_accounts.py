"""The authentication routes of docs/accounts.md, on SQLite and MariaDB."""

import datetime

import pytest

from vexpenses_core.testing import make_user

PASSWORD = "correct horse battery"


def register(app, status=201, **fields):
    body = {"name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17", **fields}
    return app.post_json("/api/v1/user/register", body, status=status)


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                         status=status)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def hooks(testapp):
    from vexpenses_core import hookimpl

    calls = []

    class Recorder:
        @hookimpl
        def vexpenses_user_registered(self, user):
            calls.append(("registered", user.email))

        @hookimpl
        def vexpenses_user_logged_in(self, user, session_id):
            calls.append(("logged_in", user.email))

        @hookimpl
        def vexpenses_login_failed(self, email):
            calls.append(("login_failed", email))

        @hookimpl
        def vexpenses_user_logged_out(self, user, session_id):
            calls.append(("logged_out", session_id))

        @hookimpl
        def vexpenses_token_refreshed(self, user, session_id):
            calls.append(("refreshed", user.email))

        @hookimpl
        def vexpenses_refresh_reuse_detected(self, user, session_id):
            calls.append(("reuse", session_id))

        @hookimpl
        def vexpenses_password_reset_requested(self, user, reset_url):
            calls.append(("reset_requested", reset_url))

        @hookimpl
        def vexpenses_password_reset_completed(self, user, sessions_ended):
            calls.append(("reset_completed", sessions_ended))

        @hookimpl
        def vexpenses_profile_viewed(self, user):
            calls.append(("profile_viewed", user.email))

        @hookimpl
        def vexpenses_users_listed(self, user, filters):
            calls.append(("users_listed", filters))

    pm = testapp.app.registry.pm
    pm.register(Recorder(), name="recorder")
    yield calls
    pm.unregister(name="recorder")


# -- register -------------------------------------------------------------------


def test_register_returns_the_user_object(testapp, hooks):
    res = register(testapp, email="  Ana@Example.COM ")
    assert res.json["status"] is True
    assert res.json["message"] == "Success on register user"
    user = res.json["data"]
    assert set(user) == {"id", "name", "email", "birth_date", "created_at", "updated_at"}
    assert user["email"] == "ana@example.com"  # normalised
    assert user["birth_date"] == "1990-05-17"
    assert user["created_at"].endswith("Z")
    assert hooks == [("registered", "ana@example.com")]


def test_register_twice_with_same_email_in_other_case_is_422(testapp):
    register(testapp)
    res = register(testapp, email="ANA@example.com", status=422)
    assert res.json["errors"] == {"email": ["The email has already been taken."]}


def test_register_reports_every_field(testapp):
    res = testapp.post_json("/api/v1/user/register", {}, status=422)
    assert res.json["message"] == "The given data was invalid."
    assert set(res.json["errors"]) == {"name", "email", "password", "birth_date"}
    assert res.json["errors"]["name"] == ["The name field is required."]


TOMORROW = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()


@pytest.mark.parametrize("fields,field,message", [
    ({"name": "  Al "}, "name", "The name field must be at least 3 characters."),
    ({"name": "x" * 256}, "name", "The name field must not be greater than 255 characters."),
    ({"name": 42}, "name", "The name field must be a string."),
    ({"email": "not-an-email"}, "email", "The email field must be a valid email address."),
    ({"email": "a@b"}, "email", "The email field must be a valid email address."),
    ({"email": "ana@example.com\r\nBcc: x@y.z"}, "email",
     "The email field must be a valid email address."),
    ({"email": "a" * 250 + "@x.com"}, "email",
     "The email field must not be greater than 254 characters."),
    ({"password": "short", "password_confirmation": "short"}, "password",
     "The password field must be at least 8 characters."),
    ({"password_confirmation": "different!!"}, "password",
     "The password field confirmation does not match."),
    ({"birth_date": "2001-02-30"}, "birth_date", "The birth date field must be a valid date."),
    ({"birth_date": "17/05/1990"}, "birth_date", "The birth date field must be a valid date."),
    ({"birth_date": TOMORROW}, "birth_date",
     "The birth date field must be a date before or equal to today."),
    ({"birth_date": ["1990-01-01"]}, "birth_date", "The birth date field must be a string."),
    ({"name": "Ana\x00"}, "name", "The name field must not contain null characters."),
])
def test_register_validation_messages(testapp, fields, field, message):
    res = register(testapp, status=422, **fields)
    assert message in res.json["errors"][field]


def test_register_ignores_unknown_fields_and_cannot_become_admin(testapp):
    res = register(testapp, is_admin=True, role="admin")
    from vexpenses_core.models import User

    session = testapp.app.registry.dbsession_factory()
    assert session.get(User, res.json["data"]["id"]).is_admin is False
    session.rollback()
    session.close()


def test_register_stores_argon2id_never_the_password(testapp):
    res = register(testapp)
    from vexpenses_core.models import User

    session = testapp.app.registry.dbsession_factory()
    user = session.get(User, res.json["data"]["id"])
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert "password" not in res.text and "hash" not in res.text
    session.rollback()
    session.close()


# -- authenticate ---------------------------------------------------------------


def test_login_returns_tokens_and_user(testapp, hooks):
    user_id = register(testapp).json["data"]["id"]
    res = login(testapp)
    assert res.json["message"] == "Success on login user"
    data = res.json["data"]
    assert data["user"] == {"id": user_id, "name": "Ana Souza", "email": "ana@example.com"}
    assert data["expires_in"] == 900
    assert data["token_type"] == "bearer"
    assert data["refresh_token"] and data["token"].count(".") == 2
    me = testapp.get("/api/v1/user/me", headers=bearer(data["token"]))
    assert me.json["message"] == "Success on get user"
    assert me.json["data"]["id"] == user_id
    assert ("logged_in", "ana@example.com") in hooks
    assert ("profile_viewed", "ana@example.com") in hooks


def test_login_is_case_insensitive_on_email(testapp):
    register(testapp)
    login(testapp, email="ANA@Example.com")


@pytest.mark.parametrize("email,password", [
    ("ana@example.com", "wrong password"),
    ("nobody@example.com", PASSWORD),
])
def test_bad_credentials_are_401(testapp, hooks, email, password):
    register(testapp)
    res = login(testapp, email=email, password=password, status=401)
    assert res.json["status"] is False
    assert ("login_failed", email) in hooks
    assert password not in str(hooks)


def test_user_without_password_cannot_log_in(testapp):
    make_user(testapp.app.registry, email="imported@example.com")
    login(testapp, email="imported@example.com", password="anything at all", status=401)


@pytest.mark.parametrize("body", [{}, {"email": "a@b.c"}, {"email": 1, "password": 2}])
def test_login_with_missing_fields_is_422(testapp, body):
    testapp.post_json("/api/v1/user/authenticate", body, status=422)


def stored_hash(registry, email):
    from sqlalchemy import select

    from vexpenses_core.models import User

    session = registry.dbsession_factory()
    try:
        return session.scalar(select(User.password_hash).where(User.email == email))
    finally:
        session.close()


def test_bcrypt_hash_from_laravel_is_accepted_and_upgraded(testapp):
    import bcrypt

    from vexpenses_core.models import User

    laravel = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
    session = testapp.app.registry.dbsession_factory()
    session.add(User(name="Old User", email="old@example.com", password_hash=laravel))
    session.commit()
    session.close()
    login(testapp, email="old@example.com")
    assert stored_hash(testapp.app.registry, "old@example.com").startswith("$argon2id$")
    login(testapp, email="old@example.com")  # and the new hash works
    login(testapp, email="old@example.com", password="wrong password", status=401)


def test_argon2_hash_is_upgraded_when_parameters_change(make_testapp):
    weak = make_testapp(**{"vexpenses.argon2.time_cost": "1"})
    register(weak)
    assert "t=1" in stored_hash(weak.app.registry, "ana@example.com")
    strong = make_testapp(**{"vexpenses.argon2.time_cost": "2"})
    login(strong)
    assert "t=2" in stored_hash(strong.app.registry, "ana@example.com")


# -- tokens ---------------------------------------------------------------------


def test_me_without_token_is_401(testapp):
    res = testapp.get("/api/v1/user/me", status=401)
    assert res.json == {"status": False, "message": "Unauthenticated.",
                        "errors": "Unauthenticated."}


def test_get_refresh_token_issues_a_new_access_token(testapp, hooks):
    register(testapp)
    token = login(testapp).json["data"]["token"]
    res = testapp.get("/api/v1/user/refresh-token", headers=bearer(token), status=201)
    assert res.json["message"] == "Success on refresh user"
    assert set(res.json["data"]) >= {"token", "expires_in"}
    testapp.get("/api/v1/user/me", headers=bearer(res.json["data"]["token"]))
    assert ("refreshed", "ana@example.com") in hooks


def test_refresh_token_rotation(testapp):
    register(testapp)
    first = login(testapp).json["data"]["refresh_token"]
    res = testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": first}, status=201)
    data = res.json["data"]
    assert set(data) == {"token", "token_type", "expires_in", "refresh_token"}
    assert data["refresh_token"] != first
    testapp.get("/api/v1/user/me", headers=bearer(data["token"]))
    # the new refresh token works once more
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": data["refresh_token"]},
                      status=201)


def test_refresh_reuse_revokes_the_whole_family(testapp, hooks):
    register(testapp)
    login_data = login(testapp).json["data"]
    first = login_data["refresh_token"]
    rotated = testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": first}).json
    second_access = rotated["data"]["token"]
    second_refresh = rotated["data"]["refresh_token"]

    # the stolen first token comes back
    res = testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": first}, status=401)
    assert "already used" in res.json["errors"]
    assert [c[0] for c in hooks].count("reuse") == 1
    # every token of that login is dead now
    testapp.get("/api/v1/user/me", headers=bearer(second_access), status=401)
    testapp.get("/api/v1/user/me", headers=bearer(login_data["token"]), status=401)
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": second_refresh},
                      status=401)


def test_other_logins_survive_a_reuse_alarm(testapp):
    register(testapp)
    phone = login(testapp).json["data"]
    laptop = login(testapp).json["data"]
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": phone["refresh_token"]})
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": phone["refresh_token"]},
                      status=401)
    testapp.get("/api/v1/user/me", headers=bearer(laptop["token"]))


@pytest.mark.parametrize("body", [
    {}, {"refresh_token": ""}, {"refresh_token": "nope"}, {"refresh_token": 12},
    {"refresh_token": ["x"]}, {"refresh_token": "x" * 5000},
])
def test_bad_refresh_tokens_are_401(testapp, body):
    res = testapp.post_json("/api/v1/user/refresh-token", body, status=401)
    assert res.json["status"] is False


def test_logout_ends_the_token_at_once(testapp, hooks):
    register(testapp)
    data = login(testapp).json["data"]
    res = testapp.get("/api/v1/user/logout", headers=bearer(data["token"]), status=201)
    assert res.json["message"] == "Success on logout user"
    testapp.get("/api/v1/user/me", headers=bearer(data["token"]), status=401)
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": data["refresh_token"]},
                      status=401)
    assert any(c[0] == "logged_out" for c in hooks)


def test_post_logout_works_too(testapp):
    register(testapp)
    token = login(testapp).json["data"]["token"]
    testapp.post("/api/v1/user/logout", headers=bearer(token), status=201)
    testapp.get("/api/v1/user/me", headers=bearer(token), status=401)


def test_sessions_list_revoke_one_and_logout_all(testapp):
    register(testapp)
    a = login(testapp).json["data"]["token"]
    b = login(testapp).json["data"]["token"]
    c = login(testapp).json["data"]["token"]
    sessions = testapp.get("/api/v1/user/sessions", headers=bearer(a)).json["data"]
    assert len(sessions) == 3
    assert sum(s["current"] for s in sessions) == 1
    other = next(s["id"] for s in sessions if not s["current"])
    testapp.delete(f"/api/v1/user/sessions/{other}", headers=bearer(a))
    alive = [t for t in (b, c) if testapp.get("/api/v1/user/me", headers=bearer(t),
                                              expect_errors=True).status_int == 200]
    assert len(alive) == 1
    res = testapp.post("/api/v1/user/logout-all", headers=bearer(a), status=201)
    assert res.json["data"]["sessions_ended"] == 2
    for token in (a, b, c):
        testapp.get("/api/v1/user/me", headers=bearer(token), status=401)


def test_revoking_an_ended_session_is_404(testapp):
    register(testapp)
    a = login(testapp).json["data"]["token"]
    login(testapp)
    sessions = testapp.get("/api/v1/user/sessions", headers=bearer(a)).json["data"]
    other = next(s["id"] for s in sessions if not s["current"])
    testapp.delete(f"/api/v1/user/sessions/{other}", headers=bearer(a))
    testapp.delete(f"/api/v1/user/sessions/{other}", headers=bearer(a), status=404)


def test_every_401_asks_for_a_bearer_token(testapp):
    register(testapp)
    res = login(testapp, password="wrong password", status=401)
    assert res.headers["WWW-Authenticate"] == "Bearer"
    res = testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": "x"}, status=401)
    assert res.headers["WWW-Authenticate"] == "Bearer"


def test_long_laravel_passwords_still_work(testapp):
    """PHP's bcrypt used only the first 72 bytes of a password."""
    import bcrypt

    from vexpenses_core.models import User

    long_password = "é" * 50  # 100 bytes
    laravel = bcrypt.hashpw(long_password.encode()[:72], bcrypt.gensalt(4)).decode()
    session = testapp.app.registry.dbsession_factory()
    session.add(User(name="Long Pass", email="long@example.com",
                     password_hash=laravel.replace("$2b$", "$2y$")))
    session.commit()
    session.close()
    login(testapp, email="long@example.com", password=long_password)


def test_cannot_revoke_someone_elses_session(testapp):
    register(testapp)
    register(testapp, email="bia@example.com")
    ana = login(testapp).json["data"]["token"]
    bia = login(testapp, email="bia@example.com").json["data"]["token"]
    bia_session = testapp.get("/api/v1/user/sessions", headers=bearer(bia)).json["data"][0]["id"]
    testapp.delete(f"/api/v1/user/sessions/{bia_session}", headers=bearer(ana), status=404)
    testapp.get("/api/v1/user/me", headers=bearer(bia))


# -- user listing -------------------------------------------------------------------


def seed_users(registry, count, prefix="user"):
    from vexpenses_core.models import User

    session = registry.dbsession_factory()
    session.add_all([User(name=f"{prefix} {i:03d}", email=f"{prefix}{i:03d}@example.com")
                     for i in range(count)])
    session.commit()
    session.close()
    from vexpenses_core.redis_client import redis_key

    registry.redis.incr(redis_key(registry, "users", "version"))


def test_user_list_is_a_laravel_paginator(testapp, hooks):
    _, token = make_user(testapp.app.registry, email="me@example.com", name="Me Myself")
    seed_users(testapp.app.registry, 24)
    res = testapp.get("/api/v1/user", {"page": 2}, headers=bearer(token))
    assert res.json["message"] == "Success on get users"
    page = res.json["data"]
    assert page["total"] == 25 and page["per_page"] == 10 and page["current_page"] == 2
    assert page["last_page"] == 3 and page["from"] == 11 and page["to"] == 20
    assert len(page["data"]) == 10
    assert set(page["data"][0]) == {"id", "name", "email", "birth_date", "created_at",
                                    "updated_at"}
    assert page["next_page_url"] == "http://localhost/api/v1/user?page=3"
    ids = [u["id"] for u in page["data"]]
    assert ids == sorted(ids)
    assert ("users_listed", {"name": None, "email": None}) in hooks


def test_user_list_filters_by_substring_and_keeps_filters_in_urls(testapp):
    registry = testapp.app.registry
    _, token = make_user(registry, email="me@example.com", name="Me Myself")
    seed_users(registry, 15, prefix="ana")
    seed_users(registry, 5, prefix="bia")
    res = testapp.get("/api/v1/user", {"name": "ana 01", "email": "EXAMPLE"},
                      headers=bearer(token))
    page = res.json["data"]
    assert page["total"] == 5
    assert all("ana 01" in u["name"] for u in page["data"])
    assert page["first_page_url"] == ("http://localhost/api/v1/user?name=ana+01&email=EXAMPLE"
                                      "&page=1")


@pytest.mark.parametrize("value", ["%", "_", "\\", "'; DROP TABLE users; --", "a" * 255])
def test_user_list_filters_treat_wildcards_literally(testapp, value):
    _, token = make_user(testapp.app.registry, email="me@example.com", name="Me Myself")
    res = testapp.get("/api/v1/user", {"name": value}, headers=bearer(token))
    assert res.json["data"]["total"] == 0


@pytest.mark.parametrize("filters", [{}, {"name": "user"}])
def test_every_page_holds_the_right_users_from_either_end(testapp, filters):
    """Pages past the middle are read from the end; they must match a plain forward read."""
    registry = testapp.app.registry
    _, token = make_user(registry, email="me@example.com", name="Me Myself")
    seed_users(registry, 36)
    expected = []
    for page in range(1, 6):
        data = testapp.get("/api/v1/user", {"page": page, **filters},
                           headers=bearer(token)).json["data"]
        expected.extend(u["id"] for u in data["data"])
        assert data["from"] == (page - 1) * 10 + 1 if data["data"] else data["from"] is None
    total = 37 if not filters else 36
    assert len(expected) == total == len(set(expected))
    assert expected == sorted(expected)


def test_user_list_page_past_the_end_is_empty(testapp):
    _, token = make_user(testapp.app.registry, email="me@example.com", name="Me Myself")
    page = testapp.get("/api/v1/user?page=99", headers=bearer(token)).json["data"]
    assert page["data"] == [] and page["total"] == 1


def test_user_list_total_follows_new_registrations(testapp):
    _, token = make_user(testapp.app.registry, email="me@example.com", name="Me Myself")
    assert testapp.get("/api/v1/user", headers=bearer(token)).json["data"]["total"] == 1
    register(testapp)
    assert testapp.get("/api/v1/user", headers=bearer(token)).json["data"]["total"] == 2


def test_users_changed_is_where_the_docs_tell_plugins_to_find_it():
    # docs/accounts.md: a plugin that adds users calls
    # vexpenses_core.accounts.services.UserService(request).users_changed().
    from vexpenses_core.accounts.services import UserService
    from vexpenses_core.accounts.users import UserService as moved

    assert UserService is moved and callable(UserService.users_changed)


def test_cursor_walk_visits_every_user_once(testapp):
    registry = testapp.app.registry
    _, token = make_user(registry, email="me@example.com", name="Me Myself")
    seed_users(registry, 23)
    seen, url = [], "/api/v1/user?cursor="
    while url:
        data = testapp.get(url, headers=bearer(token)).json["data"]
        seen.extend(u["id"] for u in data["data"])
        url = data["next_page_url"]
    assert len(seen) == 24 == len(set(seen))
    assert seen == sorted(seen)


@pytest.mark.parametrize("cursor", ["garbage", "eyJhZnRlciI6ICJ4In0", "e30", "!!!!"])
def test_bad_cursor_is_422(testapp, cursor):
    _, token = make_user(testapp.app.registry, email="me@example.com", name="Me Myself")
    res = testapp.get("/api/v1/user", {"cursor": cursor}, headers=bearer(token), status=422)
    assert "cursor" in res.json["errors"]


def test_user_list_needs_a_token(testapp):
    testapp.get("/api/v1/user", status=401)
    testapp.get("/api/v1/user/", status=401)
