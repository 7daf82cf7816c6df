"""Issue 9, class 8: a stolen access token can't keep a login alive for ever.

GET /refresh-token re-signs an access token with nothing but that token.
Neither it nor refresh-token rotation extends a login past
``vexpenses.session_max_days`` from the login, and a deployment without the
original app's clients can turn the GET off.
"""

import datetime

import jwt
import pytest

from vexpenses_core.models import AuthSession
from vexpenses_core.settings import ConfigurationError, normalize_settings
from vexpenses_core.testing import JWT_SECRET, make_user, wait_for

REFRESH = "/api/v1/user/refresh-token"
PASSWORD = "password123"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def login(app):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": "ana@example.com", "password": PASSWORD}).json["data"]


def now():
    return datetime.datetime.now(datetime.UTC)


def age_sessions(registry, logged_in_ago, expires_in=datetime.timedelta(days=10)):
    """Pretend every login began ``logged_in_ago`` and was refreshed since (by POST)."""
    db = registry.dbsession_factory()
    try:
        sessions = db.query(AuthSession).all()
        for session in sessions:
            session.created_at = now() - logged_in_ago
            session.expires_at = now() + expires_in
        db.commit()  # and forgets the cached identities
        return sessions[0].created_at
    finally:
        db.close()


def drop_sessions(registry):
    db = registry.dbsession_factory()
    try:
        db.query(AuthSession).delete()
        db.commit()
    finally:
        db.close()


def session_row(registry):
    db = registry.dbsession_factory()
    try:
        return db.query(AuthSession).one()
    finally:
        db.close()


@pytest.fixture
def app(make_testapp):
    app = make_testapp()
    make_user(app.app.registry, password=PASSWORD)
    drop_sessions(app.app.registry)  # make_user's own login: one session per test
    return app


MAX = datetime.timedelta(days=30)  # the default vexpenses.session_max_days


def test_get_refresh_never_signs_past_the_login_limit(app):
    token = login(app)["token"]
    started = age_sessions(app.app.registry, MAX - datetime.timedelta(seconds=120))
    res = app.get(REFRESH, headers=bearer(token), status=201)
    data = res.json["data"]
    assert 0 < data["expires_in"] <= 120
    exp = jwt.decode(data["token"], JWT_SECRET, algorithms=["HS256"])["exp"]
    assert exp <= (started + MAX).timestamp()
    app.get("/api/v1/user/me", headers=bearer(data["token"]), status=200)


def test_post_rotation_never_extends_past_the_login_limit(app):
    refresh = login(app)["refresh_token"]
    started = age_sessions(app.app.registry, MAX - datetime.timedelta(seconds=120))
    data = app.post_json(REFRESH, {"refresh_token": refresh}, status=201).json["data"]
    assert 0 < data["expires_in"] <= 120
    session = session_row(app.app.registry)
    assert session.expires_at <= started + MAX  # not another 14 days


def test_a_fresh_login_gets_full_lifetimes(app):
    data = login(app)
    assert data["expires_in"] == 900
    refreshed = app.get(REFRESH, headers=bearer(data["token"]), status=201).json["data"]
    assert refreshed["expires_in"] == 900


def test_the_session_never_outlives_the_limit_even_with_long_refresh_tokens(make_testapp):
    app = make_testapp(**{"vexpenses.refresh_token_days": "60",
                          "vexpenses.session_max_days": "7"})
    make_user(app.app.registry, password=PASSWORD)
    drop_sessions(app.app.registry)  # make_user's own login: one session per test
    data = login(app)
    session = session_row(app.app.registry)
    assert session.expires_at - session.created_at <= datetime.timedelta(days=7)
    app.post_json(REFRESH, {"refresh_token": data["refresh_token"]}, status=201)
    session = session_row(app.app.registry)
    assert session.expires_at - session.created_at <= datetime.timedelta(days=7)


# What a thief holding an old login's tokens might try once the limit has passed.
PAST_THE_LIMIT = [
    ("GET refresh with the access token", "get_refresh"),
    ("POST rotation with the refresh token", "post_refresh"),
    ("the access token on /me", "me"),
    ("the access token on GET /logout", "logout"),
    ("the access token on the session list", "sessions"),
]


@pytest.mark.parametrize("attempt", [kind for _, kind in PAST_THE_LIMIT],
                         ids=[label for label, _ in PAST_THE_LIMIT])
def test_nothing_works_once_the_login_is_too_old(app, attempt):
    data = login(app)
    age_sessions(app.app.registry, MAX + datetime.timedelta(seconds=1))
    headers = bearer(data["token"])
    if attempt == "get_refresh":
        res = app.get(REFRESH, headers=headers, status=401)
    elif attempt == "post_refresh":
        res = app.post_json(REFRESH, {"refresh_token": data["refresh_token"]}, status=401)
        assert res.json["errors"] == "The login has reached its maximum lifetime; log in again."
    elif attempt == "me":
        res = app.get("/api/v1/user/me", headers=headers, status=401)
    elif attempt == "logout":
        res = app.get("/api/v1/user/logout", headers=headers, status=401)
    else:
        res = app.get("/api/v1/user/sessions", headers=headers, status=401)
    assert res.json["status"] is False
    assert res.content_type == "application/json"


def test_lowering_the_limit_ends_older_logins(make_testapp):
    app = make_testapp(**{"vexpenses.session_max_days": "3"})
    make_user(app.app.registry, password=PASSWORD)
    data = login(app)
    age_sessions(app.app.registry, datetime.timedelta(days=4))  # made under a larger limit
    app.get("/api/v1/user/me", headers=bearer(data["token"]), status=401)
    app.post_json(REFRESH, {"refresh_token": data["refresh_token"]}, status=401)


def test_a_cached_identity_ends_at_the_login_limit(make_testapp, redis_url):
    """The identity cache holds the session's end, the absolute limit included."""
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    make_user(app.app.registry, password=PASSWORD)
    token = login(app)["token"]
    age_sessions(app.app.registry, MAX - datetime.timedelta(seconds=2))
    app.get("/api/v1/user/me", headers=bearer(token), status=200)  # now cached
    assert wait_for(
        lambda: app.get("/api/v1/user/me", headers=bearer(token), expect_errors=True)
        .status_int == 401, timeout=15)


def test_the_legacy_get_refresh_can_be_turned_off(make_testapp):
    app = make_testapp(**{"vexpenses.legacy_get_refresh": "false"})
    make_user(app.app.registry, password=PASSWORD)
    data = login(app)
    res = app.get(REFRESH, headers=bearer(data["token"]), status=405)
    assert res.headers["Allow"] == "POST"
    assert res.json == {"status": False, "message": "Method not allowed.",
                        "errors": "Method not allowed."}
    rotated = app.post_json(REFRESH, {"refresh_token": data["refresh_token"]}, status=201)
    app.get("/api/v1/user/me", headers=bearer(rotated.json["data"]["token"]), status=200)


def test_the_legacy_get_refresh_is_on_by_default(app):
    token = login(app)["token"]
    app.get(REFRESH, headers=bearer(token), status=201)


def test_the_schema_marks_the_get_refresh_as_legacy(app):
    operation = app.get("/api/v1/openapi.json").json["paths"][REFRESH]["get"]
    assert operation["deprecated"] is True
    assert "405" in operation["responses"]


@pytest.mark.parametrize("name, value", [
    ("vexpenses.session_max_days", "0"),
    ("vexpenses.session_max_days", "-3"),
    ("vexpenses.session_max_days", "a month"),
])
def test_bad_lifetime_settings_stop_startup(name, value):
    with pytest.raises(ConfigurationError, match=name):
        normalize_settings({name: value}, environ={})


def test_the_settings_have_environment_variables():
    settings = normalize_settings({}, environ={"VEXPENSES_SESSION_MAX_DAYS": "5",
                                               "VEXPENSES_LEGACY_GET_REFRESH": "off"})
    assert settings["vexpenses.session_max_days"] == 5
    assert settings["vexpenses.legacy_get_refresh"] is False
