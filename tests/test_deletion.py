"""Deleting an account (issue 12, LGPD right to erasure): DELETE /api/v1/user/me and
DELETE /api/v1/user/{id}, on SQLite and MariaDB, with and without Redis.

The account, its login sessions, refresh tokens and e-mailed link tokens go at
once (the foreign keys cascade); the imports the person made stay, without the
link. What the audit log and the mailer keep is tested with those plugins.
"""

import datetime

import pytest
import sqlalchemy as sa
from vexpenses_csv_import.testing import finished_status, make_csv, upload

from vexpenses_core import hookimpl
from vexpenses_core.models import VERIFY, AccountToken
from vexpenses_core.testing import bearer, make_user

PASSWORD = "correct horse battery"
ME = "/api/v1/user/me"


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp):
    """Without Redis, and with a real one (the identity cache, shared limits)."""
    if request.param == "redis":
        return make_testapp(**{"vexpenses.redis_url": request.getfixturevalue("redis_url")})
    return make_testapp()


@pytest.fixture
def ana(app):
    """``(id, token)``: Ana, with a password and one login session."""
    return make_user(app.app.registry, email="ana@example.com", password=PASSWORD)


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                         status=status)


def delete_me(app, token, password=PASSWORD, status=200):
    return app.delete_json(ME, {"current_password": password}, headers=bearer(token),
                           status=status)


def count(app, sql, **params):
    with app.app.registry.dbengine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def rows_of(app, user_id):
    """How many rows of each table hold the user."""
    return {
        "users": count(app, "SELECT COUNT(*) FROM users WHERE id = :id", id=user_id),
        "auth_sessions": count(
            app, "SELECT COUNT(*) FROM auth_sessions WHERE user_id = :id", id=user_id),
        "refresh_tokens": count(
            app, "SELECT COUNT(*) FROM refresh_tokens WHERE session_id IN "
                 "(SELECT id FROM auth_sessions WHERE user_id = :id)", id=user_id),
        "password_resets": count(
            app, "SELECT COUNT(*) FROM password_resets WHERE user_id = :id", id=user_id),
    }


def add_link_token(app, user_id, purpose=VERIFY):
    db = app.app.registry.dbsession_factory()
    try:
        now = datetime.datetime.now(datetime.UTC)
        db.add(AccountToken(user_id=user_id, purpose=purpose, token_hash=purpose * 4,
                            created_at=now, expires_at=now + datetime.timedelta(hours=1)))
        db.commit()
    finally:
        db.close()


def test_delete_me_removes_the_user_their_sessions_and_tokens(app, ana):
    user_id, token = ana
    other = login(app).json["data"]  # a second session, with a refresh token
    add_link_token(app, user_id)
    bia_id, bia_token = make_user(app.app.registry, email="bia@example.com", name="Bia Lima")
    app.get(ME, headers=bearer(token), status=200)  # cached, with Redis
    assert rows_of(app, user_id) == {"users": 1, "auth_sessions": 2, "refresh_tokens": 2,
                                     "password_resets": 1}
    body = delete_me(app, token).json
    assert body == {"status": True, "message": "Account deleted", "data": None}
    assert rows_of(app, user_id) == {"users": 0, "auth_sessions": 0, "refresh_tokens": 0,
                                     "password_resets": 0}
    # every token of the account is refused at once, the cached one included
    app.get(ME, headers=bearer(token), status=401)
    app.get(ME, headers=bearer(other["token"]), status=401)
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": other["refresh_token"]},
                  status=401)
    assert login(app, status=401).json["message"] == "Invalid credentials."
    # nobody else is touched, and the user list counts one user less
    assert rows_of(app, bia_id)["users"] == 1
    page = app.get("/api/v1/user", headers=bearer(bia_token)).json["data"]
    assert page["total"] == 1 and [u["id"] for u in page["data"]] == [bia_id]


def test_the_address_can_register_again(app, ana):
    _, token = ana
    delete_me(app, token)
    body = {"name": "Ana Nova", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17"}
    app.post_json("/api/v1/user/register", body, status=201)


def test_a_wrong_password_is_a_422_and_deletes_nothing(app, ana):
    user_id, token = ana
    body = delete_me(app, token, password="not my password", status=422).json
    assert body["status"] is False
    assert body["errors"] == {"current_password": ["The current password is incorrect."]}
    assert rows_of(app, user_id)["users"] == 1
    app.get(ME, headers=bearer(token), status=200)


@pytest.mark.parametrize("body, message", [
    ({}, "The current password field is required."),
    ({"current_password": ""}, "The current password field is required."),
    ({"current_password": 12345678}, "The current password field must be a string."),
    ({"current_password": "x" * 1025},
     "The current password field must not be greater than 1024 characters."),
])
def test_the_current_password_is_required(app, ana, body, message):
    user_id, token = ana
    response = app.delete_json(ME, body, headers=bearer(token), status=422)
    assert response.json["errors"] == {"current_password": [message]}
    assert rows_of(app, user_id)["users"] == 1


def test_a_token_is_required(app, ana):
    user_id, _ = ana
    app.delete_json(ME, {"current_password": PASSWORD}, status=401)
    assert rows_of(app, user_id)["users"] == 1


def test_wrong_passwords_count_towards_the_login_limit(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.login_account": "3 per hour"})
    user_id, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    for _ in range(3):
        delete_me(app, token, password="a guess at it", status=422)
    # spent: even the right password waits now, here and at login
    assert delete_me(app, token, status=429).json["message"] == "Too many attempts."
    assert login(app, status=429).json["message"] == "Too many attempts."
    assert rows_of(app, user_id)["users"] == 1


def test_the_last_admin_cannot_delete_themselves(app):
    admin_id, token = make_user(app.app.registry, email="root@example.com", is_admin=True,
                                password=PASSWORD)
    body = delete_me(app, token, status=422).json
    assert body["errors"] == {"user": [
        "You cannot delete the last enabled admin; make another user an admin first."]}
    assert rows_of(app, admin_id)["users"] == 1
    # with another enabled admin, they can
    make_user(app.app.registry, email="other@example.com", is_admin=True)
    delete_me(app, token)
    assert rows_of(app, admin_id)["users"] == 0


def test_imports_made_by_the_user_stay_without_the_link(make_testapp):
    app = make_testapp(**{"vexpenses.plugins": "csv_import"})
    user_id, token = make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    content = make_csv([("Caio Prado", "caio@example.com", "1991-02-03")])
    import_id = upload(app, token, content).json["data"]["id"]
    finished_status(app, token, import_id)
    delete_me(app, token)
    sql = "SELECT COUNT(*) FROM imports WHERE id = :id AND user_id IS NULL"
    assert count(app, sql, id=import_id) == 1
    # and the account the import created is someone else's: it stays
    assert count(app, "SELECT COUNT(*) FROM users WHERE email = 'caio@example.com'") == 1


def test_hook_erase_user_runs_first_and_a_raise_fails_everything(app, ana):
    user_id, token = ana
    seen = []

    class Eraser:
        @hookimpl
        def vexpenses_erase_user(self, request, user):
            # the row is still there, with its address, for the plugin to find
            row = request.dbsession.execute(
                sa.text("SELECT email FROM users WHERE id = :id"), {"id": user.id}).scalar()
            seen.append((user.id, user.email, row))
            if len(seen) == 1:
                raise RuntimeError("cannot erase")

    app.app.registry.pm.register(Eraser())
    delete_me(app, token, status=500)
    assert rows_of(app, user_id)["users"] == 1
    app.get(ME, headers=bearer(token), status=200)  # nothing ended
    delete_me(app, token)
    assert seen == [(user_id, "ana@example.com", "ana@example.com")] * 2
    assert rows_of(app, user_id)["users"] == 0


def test_hook_erase_user_can_write_in_the_deleting_transaction(app, ana):
    user_id, token = ana
    bia_id, _ = make_user(app.app.registry, email="bia@example.com", name="Bia Lima")

    class Eraser:
        @hookimpl
        def vexpenses_erase_user(self, request, user):
            # a plugin scrubbing a copy of the address elsewhere
            request.dbsession.execute(sa.text("UPDATE users SET name = 'Erased' WHERE id = :id"),
                                      {"id": bia_id})

    app.app.registry.pm.register(Eraser())
    delete_me(app, token)
    assert count(app, "SELECT name FROM users WHERE id = :id", id=bia_id) == "Erased"


def test_hook_user_deleted_gets_the_detached_user_after_the_row_is_gone(app, ana):
    user_id, token = ana
    seen = []

    class Spy:
        @hookimpl
        def vexpenses_user_deleted(self, request, user, by_admin):
            from sqlalchemy import inspect

            seen.append((user.id, user.name, user.email, by_admin, inspect(user).detached,
                         request.dbsession.get(type(user), user_id)))

    app.app.registry.pm.register(Spy())
    delete_me(app, token, password="wrong password", status=422)
    assert seen == []
    delete_me(app, token)
    assert seen == [(user_id, "Ana Souza", "ana@example.com", False, True, None)]
