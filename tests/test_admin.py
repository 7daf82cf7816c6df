"""Admins managing users (issue 12): GET, PATCH and DELETE /api/v1/user/{id}, POST
/api/v1/user/{id}/logout-all, the last-admin guard, and who may list users; on SQLite
and MariaDB, with and without Redis (the identity cache)."""

import threading

import jwt
import pytest
from sqlalchemy import select

import vexpenses_core.accounts.admin as admin_module
from vexpenses_core import hookimpl
from vexpenses_core.models import AuthSession, User
from vexpenses_core.testing import bearer, make_user

PASSWORD = "correct horse battery"
USERS = "/api/v1/user"
ADMIN_FIELDS = {"id", "name", "email", "birth_date", "created_at", "updated_at",
                "email_verified_at", "is_admin", "disabled_at"}
LAST_ADMIN = "You cannot {} the last enabled admin; make another user an admin first."


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp):
    """Without Redis, and with a real one (the identity cache, shared limits)."""
    if request.param == "redis":
        return make_testapp(**{"vexpenses.redis_url": request.getfixturevalue("redis_url")})
    return make_testapp()


@pytest.fixture
def root(app):
    """``(id, token)``: the admin."""
    return make_user(app.app.registry, email="root@example.com", name="Root Admin",
                     is_admin=True, password=PASSWORD)


@pytest.fixture
def ana(app):
    """``(id, token)``: a plain user, with a password."""
    return make_user(app.app.registry, email="ana@example.com", password=PASSWORD)


def stored(app, user_id):
    db = app.app.registry.dbsession_factory()
    try:
        return db.scalars(select(User).where(User.id == user_id)).one_or_none()
    finally:
        db.close()


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    return app.post_json(f"{USERS}/authenticate", {"email": email, "password": password},
                         status=status)


def patch(app, token, user_id, body, status=200):
    return app.patch_json(f"{USERS}/{user_id}", body, headers=bearer(token), status=status)


class Spy:
    """Records the admin hooks: ``[(hook, user id, extra)]``."""

    def __init__(self):
        self.calls = []

    @hookimpl
    def vexpenses_user_viewed(self, request, user):
        self.calls.append(("viewed", user.id, request.identity.id))

    @hookimpl
    def vexpenses_user_updated(self, user, fields):
        self.calls.append(("updated", user.id, fields))

    @hookimpl
    def vexpenses_user_disabled(self, user, sessions_ended):
        self.calls.append(("disabled", user.id, sessions_ended, user.disabled_at is not None))

    @hookimpl
    def vexpenses_user_enabled(self, user):
        self.calls.append(("enabled", user.id, user.disabled_at))

    @hookimpl
    def vexpenses_user_sessions_revoked(self, user, sessions_ended):
        self.calls.append(("sessions_revoked", user.id, sessions_ended))

    @hookimpl
    def vexpenses_user_deleted(self, user, by_admin):
        self.calls.append(("deleted", user.id, by_admin))


@pytest.fixture
def spy(app):
    spy = Spy()
    app.app.registry.pm.register(spy)
    return spy


# -- who may do what -------------------------------------------------------------


def test_an_admin_gets_any_user_with_the_admin_fields(app, root, ana):
    ana_id, _ = ana
    body = app.get(f"{USERS}/{ana_id}", headers=bearer(root[1]), status=200).json
    assert body["status"] is True and body["message"] == "Success on get user"
    data = body["data"]
    assert set(data) == ADMIN_FIELDS
    assert (data["id"], data["email"], data["is_admin"], data["disabled_at"],
            data["email_verified_at"]) == (ana_id, "ana@example.com", False, None, None)


def test_a_user_gets_their_own_id_as_me_gives_it(app, ana):
    ana_id, token = ana
    data = app.get(f"{USERS}/{ana_id}", headers=bearer(token), status=200).json["data"]
    assert data == app.get(f"{USERS}/me", headers=bearer(token)).json["data"]
    assert "is_admin" not in data and "disabled_at" not in data


def test_a_user_gets_403_for_any_other_id_known_or_not(app, root, ana):
    _, token = ana
    # 2**63 is past BIGINT but still an id's shape (19 digits); a longer one is
    # no id at all, a 404 for anyone, like "abc": it tells nothing about accounts.
    for user_id in (root[0], 999999, 2**63):
        body = app.get(f"{USERS}/{user_id}", headers=bearer(token), status=403).json
        assert body == {"status": False, "message": "This action is unauthorized.",
                        "errors": "This action is unauthorized."}


@pytest.mark.parametrize("method, path, body", [
    ("patch_json", "{id}", {"name": "Hacked Name"}),
    ("patch_json", "{id}", {"is_admin": True}),
    ("delete_json", "{id}", {}),
    ("post_json", "{id}/logout-all", {}),
])
def test_only_admins_change_end_or_delete_users(app, root, ana, method, path, body):
    ana_id, token = ana
    for target in (ana_id, root[0], 999999):  # themselves, an admin, nobody
        url = f"{USERS}/" + path.format(id=target)
        response = getattr(app, method)(url, body, headers=bearer(token), status=403)
        assert response.json["message"] == "This action is unauthorized."
        getattr(app, method)(url, body, status=401)
    user = stored(app, ana_id)
    assert (user.name, user.is_admin) == ("Ana Souza", False)
    app.get(f"{USERS}/me", headers=bearer(token), status=200)
    app.get(f"{USERS}/me", headers=bearer(root[1]), status=200)


@pytest.mark.parametrize("user_id", ["999999", "0", "9223372036854775807",
                                     "9223372036854775808", "9" * 40,
                                     "9" * 5000])  # past int()'s 4,300 digits: was a 500
def test_unknown_ids_are_404(app, root, user_id):
    _, token = root
    for method, path, body in [("get", user_id, None), ("patch_json", user_id, {"name": "Ana B"}),
                               ("delete_json", user_id, {}),
                               ("post_json", f"{user_id}/logout-all", {})]:
        args = () if body is None else (body,)
        response = getattr(app, method)(f"{USERS}/{path}", *args, headers=bearer(token),
                                        status=404)
        assert response.json == {"status": False, "message": "Not found.",
                                 "errors": "Not found."}


@pytest.mark.parametrize("path", ["abc", "-1", "1.5", "1e3", "%201", "1abc"])
def test_ids_that_are_not_digits_are_404(app, root, path):
    response = app.get(f"{USERS}/{path}", headers=bearer(root[1]), status=404)
    assert response.json["status"] is False
    assert response.content_type == "application/json"


def test_the_named_routes_are_not_shadowed(app, ana):
    _, token = ana
    assert app.get(f"{USERS}/me", headers=bearer(token)).json["message"] == "Success on get user"
    app.get(f"{USERS}/sessions", headers=bearer(token), status=200)
    app.get(f"{USERS}/", headers=bearer(token), status=200)
    app.post_json(f"{USERS}/logout-all", {}, headers=bearer(token), status=201)
    body = {"name": "Bia Lima", "email": "bia@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17"}
    app.post_json(f"{USERS}/register", body, status=201)


# -- PATCH --------------------------------------------------------------------------


def test_an_admin_changes_name_and_birth_date(app, root, ana, spy):
    ana_id, ana_token = ana
    app.get(f"{USERS}/me", headers=bearer(ana_token))  # cached, with Redis
    body = patch(app, root[1], ana_id, {"name": " Ana   Maria ", "birth_date": "1990-05-17"}).json
    assert body["message"] == "Success on update user"
    assert set(body["data"]) == ADMIN_FIELDS
    assert (body["data"]["name"], body["data"]["birth_date"]) == ("Ana Maria", "1990-05-17")
    # Ana sees it at once, and her session goes on
    me = app.get(f"{USERS}/me", headers=bearer(ana_token), status=200).json["data"]
    assert me["name"] == "Ana Maria"
    assert spy.calls == [("updated", ana_id, ["birth_date", "name"])]


def test_promoting_a_user_gives_them_admin_rights_at_once(app, root, ana):
    ana_id, ana_token = ana
    app.get("/api/v1/plugins", headers=bearer(ana_token), status=403)  # cached, with Redis
    data = patch(app, root[1], ana_id, {"is_admin": True}).json["data"]
    assert data["is_admin"] is True
    app.get("/api/v1/plugins", headers=bearer(ana_token), status=200)
    app.get(f"{USERS}/{root[0]}", headers=bearer(ana_token), status=200)


@pytest.mark.parametrize("body, errors", [
    ({}, {"body": ["Send at least one of these fields: name, birth_date, is_admin, disabled."]}),
    ({"is_admin": "yes"}, {"is_admin": ["The is admin field must be true or false."]}),
    ({"is_admin": 1}, {"is_admin": ["The is admin field must be true or false."]}),
    ({"is_admin": "true"}, {"is_admin": ["The is admin field must be true or false."]}),
    ({"is_admin": None}, {"is_admin": ["The is admin field is required."]}),
    ({"disabled": 0}, {"disabled": ["The disabled field must be true or false."]}),
    ({"disabled": "false"}, {"disabled": ["The disabled field must be true or false."]}),
    ({"disabled": [True]}, {"disabled": ["The disabled field must be true or false."]}),
    ({"name": "Al"}, {"name": ["The name field must be at least 3 characters."]}),
    ({"name": 123}, {"name": ["The name field must be a string."]}),
    ({"birth_date": "2999-01-01"},
     {"birth_date": ["The birth date field must be a date before or equal to today."]}),
    ({"birth_date": "17/05/1990"}, {"birth_date": ["The birth date field must be a valid date."]}),
    ({"email": "new@example.com"}, {"email": ["The email field cannot be changed here."]}),
    ({"password": "a new password"}, {"password": ["The password field cannot be changed here."]}),
    ({"disabled_at": None, "name": "Ana Bia"},
     {"disabled_at": ["The disabled_at field cannot be changed here."]}),
])
def test_patch_validation(app, root, ana, spy, body, errors):
    ana_id, ana_token = ana
    response = patch(app, root[1], ana_id, body, status=422).json
    assert response["status"] is False and response["errors"] == errors
    user = stored(app, ana_id)
    assert (user.name, user.birth_date, user.is_admin, user.disabled_at) == (
        "Ana Souza", None, False, None)
    app.get(f"{USERS}/me", headers=bearer(ana_token), status=200)
    assert spy.calls == []


def test_a_body_that_is_not_an_object_is_a_422(app, root, ana):
    response = app.patch(f"{USERS}/{ana[0]}", "[true]", headers={
        **bearer(root[1]), "Content-Type": "application/json"}, status=422)
    assert response.json["errors"] == {"body": ["The request body must be a JSON object."]}


# -- disabling ----------------------------------------------------------------------


def test_disabling_ends_every_session_at_once_and_refuses_logins(app, root, ana, spy):
    ana_id, token = ana
    second = login(app).json["data"]
    for t in (token, second["token"]):
        app.get(f"{USERS}/me", headers=bearer(t), status=200)  # cached, with Redis
    data = patch(app, root[1], ana_id, {"disabled": True}).json["data"]
    assert data["disabled_at"] is not None
    for t in (token, second["token"]):
        app.get(f"{USERS}/me", headers=bearer(t), status=401)
    app.post_json(f"{USERS}/refresh-token", {"refresh_token": second["refresh_token"]},
                  status=401)
    refused = login(app, status=403).json
    assert refused["status"] is False and refused["message"] == "This account is disabled."
    # a wrong password learns nothing about the account's state
    login(app, password="not the password", status=401)
    assert spy.calls == [("disabled", ana_id, 2, True),
                         ("updated", ana_id, ["disabled"])]
    # the admin's own session is untouched
    app.get(f"{USERS}/me", headers=bearer(root[1]), status=200)


def test_enabling_again_lets_the_user_log_in(app, root, ana, spy):
    ana_id, _ = ana
    patch(app, root[1], ana_id, {"disabled": True})
    login(app, status=403)
    data = patch(app, root[1], ana_id, {"disabled": False}).json["data"]
    assert data["disabled_at"] is None
    token = login(app).json["data"]["token"]
    app.get(f"{USERS}/me", headers=bearer(token), status=200)
    assert [call[0] for call in spy.calls] == ["disabled", "updated", "enabled", "updated"]
    assert spy.calls[2] == ("enabled", ana_id, None)


def test_disabling_twice_keeps_the_first_time_and_fires_once(app, root, ana, spy):
    ana_id, _ = ana
    first = patch(app, root[1], ana_id, {"disabled": True}).json["data"]["disabled_at"]
    again = patch(app, root[1], ana_id, {"disabled": True}).json["data"]["disabled_at"]
    assert again == first
    patch(app, root[1], ana_id, {"disabled": False})
    patch(app, root[1], ana_id, {"disabled": False})
    assert [call[0] for call in spy.calls] == ["disabled", "updated", "updated", "enabled",
                                               "updated", "updated"]


def test_a_session_that_survived_disabling_is_refused(app, ana):
    """Belt and braces: a disabled user's live session (written around the service)
    gives no identity, from the database or from the cache."""
    ana_id, token = ana
    app.get(f"{USERS}/me", headers=bearer(token), status=200)  # cached, with Redis
    db = app.app.registry.dbsession_factory()
    try:
        db.get(User, ana_id).disabled_at = db.scalar(select(User.created_at).where(
            User.id == ana_id))
        db.commit()  # an ORM flush: the identity cache forgets Ana
    finally:
        db.close()
    app.get(f"{USERS}/me", headers=bearer(token), status=401)


def test_a_cached_identity_that_says_disabled_is_refused(make_testapp, redis_url):
    """An entry cached as disabled (say, by a request that read the row as an admin
    disabled it) is no identity, although the session is live in the database."""
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    ana_id, token = make_user(registry, email="ana@example.com")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    db = registry.dbsession_factory()
    try:
        user = db.get(User, ana_id)
        expires = db.scalar(select(AuthSession.expires_at).where(AuthSession.id == session_id))
        db.expunge(user)
    finally:
        db.close()
    user.disabled_at = expires  # only in the cache: the database still says enabled
    cache = registry.identity_cache
    cache.forget([ana_id])
    _, gen = cache.get(ana_id, session_id)
    cache.put(user, expires, session_id, gen)
    assert cache.get(ana_id, session_id)[0].disabled_at is not None
    app.get(f"{USERS}/me", headers=bearer(token), status=401)


# -- the last admin -----------------------------------------------------------------


def test_the_last_admin_cannot_demote_disable_or_delete_themselves(app, root, spy):
    root_id, token = root
    for body, field, verb in [({"is_admin": False}, "is_admin", "demote"),
                              ({"disabled": True}, "disabled", "disable"),
                              ({"is_admin": False, "disabled": True}, "is_admin", "demote")]:
        errors = patch(app, token, root_id, body, status=422).json["errors"]
        assert errors == {field: [LAST_ADMIN.format(verb)]}
    errors = app.delete_json(f"{USERS}/{root_id}", {}, headers=bearer(token),
                             status=422).json["errors"]
    assert errors == {"user": [LAST_ADMIN.format("delete")]}
    user = stored(app, root_id)
    assert user.is_admin is True and user.disabled_at is None
    app.get("/api/v1/plugins", headers=bearer(token), status=200)
    assert spy.calls == []


def test_a_disabled_admin_does_not_count_as_another_admin(app, root):
    root_id, token = root
    other_id, _ = make_user(app.app.registry, email="other@example.com", is_admin=True)
    patch(app, token, other_id, {"disabled": True})
    patch(app, token, root_id, {"is_admin": False}, status=422)
    # once the other admin is enabled again, root may step down
    patch(app, token, other_id, {"disabled": False})
    data = patch(app, token, root_id, {"is_admin": False}).json["data"]
    assert data["is_admin"] is False
    app.get("/api/v1/plugins", headers=bearer(token), status=403)


def test_with_another_admin_an_admin_may_step_down(app, root):
    root_id, token = root
    make_user(app.app.registry, email="other@example.com", is_admin=True)
    patch(app, token, root_id, {"disabled": True})
    app.get(f"{USERS}/me", headers=bearer(token), status=401)


def test_two_admins_demoting_each_other_at_once_leave_one(app, root, monkeypatch):
    """The guard locks the admins' rows: B's request reads after A's commits.

    A's request pauses after its change, before its commit, until B's request
    reaches the guard. Without the lock B would read two admins and pass.
    On SQLite B's transaction cannot even begin before A commits (BEGIN
    IMMEDIATE), so A does not wait for it there: B is no admin by then.
    """
    root_id, root_token = root
    other_id, other_token = make_user(app.app.registry, email="other@example.com",
                                      is_admin=True)
    waits = app.app.registry.dbengine.dialect.name != "sqlite"
    a_paused, b_at_guard = threading.Event(), threading.Event()
    guard = admin_module.keep_an_admin

    def spied_guard(request, user, field):
        if threading.current_thread().name == "B":
            b_at_guard.set()
        return guard(request, user, field)

    class Pause:
        @hookimpl
        def vexpenses_user_updated(self, user, fields):
            if threading.current_thread().name == "A":
                a_paused.set()
                if waits:
                    b_at_guard.wait(timeout=30)

    monkeypatch.setattr(admin_module, "keep_an_admin", spied_guard)
    app.app.registry.pm.register(Pause())
    statuses = {}

    def demote(name, token, target):
        statuses[name] = app.patch_json(f"{USERS}/{target}", {"is_admin": False},
                                        headers=bearer(token), expect_errors=True).status_int

    a = threading.Thread(target=demote, args=("A", root_token, other_id), name="A")
    b = threading.Thread(target=demote, args=("B", other_token, root_id), name="B")
    a.start()
    assert a_paused.wait(timeout=30)
    b.start()
    a.join()
    b.join()
    # On SQLite B's request reads who B is only after A's commit: no admin any more.
    assert statuses == {"A": 200, "B": 422 if waits else 403}
    assert stored(app, root_id).is_admin is True
    assert stored(app, other_id).is_admin is False


# -- logout-all and delete -------------------------------------------------------------


def test_an_admin_ends_every_session_of_a_user(app, root, ana, spy):
    ana_id, token = ana
    second = login(app).json["data"]
    app.get(f"{USERS}/me", headers=bearer(token), status=200)  # cached, with Redis
    body = app.post_json(f"{USERS}/{ana_id}/logout-all", {}, headers=bearer(root[1]),
                         status=200).json
    assert body == {"status": True, "message": "Sessions ended", "data": {"sessions_ended": 2}}
    app.get(f"{USERS}/me", headers=bearer(token), status=401)
    app.post_json(f"{USERS}/refresh-token", {"refresh_token": second["refresh_token"]},
                  status=401)
    # not disabled: a new login works
    login(app)
    assert spy.calls == [("sessions_revoked", ana_id, 2)]


def test_an_admin_deletes_a_user(app, root, ana, spy):
    ana_id, token = ana
    app.get(f"{USERS}/me", headers=bearer(token), status=200)  # cached, with Redis
    body = app.delete(f"{USERS}/{ana_id}", headers=bearer(root[1]), status=200).json
    assert body == {"status": True, "message": "Account deleted", "data": None}
    assert stored(app, ana_id) is None
    app.get(f"{USERS}/me", headers=bearer(token), status=401)
    login(app, status=401)
    app.get(f"{USERS}/{ana_id}", headers=bearer(root[1]), status=404)
    assert spy.calls == [("deleted", ana_id, True)]


def test_an_admin_may_delete_themselves_when_another_admin_is_left(app, root):
    root_id, token = root
    make_user(app.app.registry, email="other@example.com", is_admin=True)
    app.delete(f"{USERS}/{root_id}", headers=bearer(token), status=200)
    assert stored(app, root_id) is None


# -- the hooks ----------------------------------------------------------------------------


def test_hook_user_viewed_names_who_looked(app, root, ana, spy):
    ana_id, ana_token = ana
    app.get(f"{USERS}/{ana_id}", headers=bearer(root[1]))
    app.get(f"{USERS}/{ana_id}", headers=bearer(ana_token))
    app.get(f"{USERS}/{root[0]}", headers=bearer(ana_token), status=403)
    app.get(f"{USERS}/999999", headers=bearer(root[1]), status=404)
    assert spy.calls == [("viewed", ana_id, root[0]), ("viewed", ana_id, ana_id)]


def test_hook_user_updated_names_every_field_sent(app, root, ana, spy):
    ana_id, _ = ana
    patch(app, root[1], ana_id, {"is_admin": True, "name": "Ana Admin", "disabled": False})
    assert spy.calls == [("updated", ana_id, ["disabled", "is_admin", "name"])]


def test_hook_user_disabled_counts_the_active_sessions(app, root, ana, spy):
    ana_id, token = ana
    login(app)
    app.post_json(f"{USERS}/logout", {}, headers=bearer(token), status=201)
    patch(app, root[1], ana_id, {"disabled": True})
    assert spy.calls[0] == ("disabled", ana_id, 1, True)


def test_hook_user_enabled_only_when_the_user_was_disabled(app, root, ana, spy):
    ana_id, _ = ana
    patch(app, root[1], ana_id, {"disabled": False})
    assert [call[0] for call in spy.calls] == ["updated"]
    patch(app, root[1], ana_id, {"disabled": True})
    patch(app, root[1], ana_id, {"disabled": False})
    assert ("enabled", ana_id, None) in spy.calls


def test_hook_user_sessions_revoked_counts_zero_when_none_was_active(app, root, ana, spy):
    ana_id, token = ana
    app.post_json(f"{USERS}/logout", {}, headers=bearer(token), status=201)
    app.post_json(f"{USERS}/{ana_id}/logout-all", {}, headers=bearer(root[1]), status=200)
    assert spy.calls == [("sessions_revoked", ana_id, 0)]


def test_hook_user_deleted_by_an_admin(app, root, ana, spy):
    ana_id, _ = ana
    app.delete(f"{USERS}/{root[0]}", headers=bearer(root[1]), status=422)
    app.delete(f"{USERS}/{ana_id}", headers=bearer(root[1]), status=200)
    assert spy.calls == [("deleted", ana_id, True)]


# -- who may list users -------------------------------------------------------------------


@pytest.fixture
def admins_only(make_testapp):
    return make_testapp(**{"vexpenses.accounts.user_list": "admins"})


def test_with_user_list_admins_a_user_lists_only_themselves(admins_only):
    app = admins_only
    registry = app.app.registry
    ana_id, token = make_user(registry, email="ana@example.com")
    for i in range(12):
        make_user(registry, email=f"user{i}@example.com", name=f"User {i}")
    page = app.get(USERS, headers=bearer(token)).json["data"]
    assert (page["total"], page["last_page"], page["per_page"]) == (1, 1, 10)
    assert [u["id"] for u in page["data"]] == [ana_id]
    assert set(page["data"][0]) == {"id", "name", "email", "birth_date", "created_at",
                                    "updated_at"}
    # filters apply to that one user
    assert app.get(f"{USERS}?name=ana", headers=bearer(token)).json["data"]["total"] == 1
    assert app.get(f"{USERS}?email=user1", headers=bearer(token)).json["data"]["total"] == 0
    assert app.get(f"{USERS}?page=2", headers=bearer(token)).json["data"]["data"] == []
    cursor = app.get(f"{USERS}?cursor=", headers=bearer(token)).json["data"]
    assert [u["id"] for u in cursor["data"]] == [ana_id] and cursor["next_cursor"] is None


def test_with_user_list_admins_an_admin_lists_everyone(admins_only):
    app = admins_only
    registry = app.app.registry
    _, token = make_user(registry, email="root@example.com", is_admin=True)
    for i in range(12):
        make_user(registry, email=f"user{i}@example.com", name=f"User {i}")
    page = app.get(USERS, headers=bearer(token)).json["data"]
    assert page["total"] == 13 and len(page["data"]) == 10


def test_by_default_every_user_lists_everyone(app, root, ana):
    _, token = ana
    page = app.get(USERS, headers=bearer(token)).json["data"]
    assert page["total"] == 2
