"""The identity cache: requests skip the database, and no change outlives its commit."""

import datetime
import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import redis
import sqlalchemy as sa
from pyramid.request import Request
from pyramid.scripting import prepare

from vexpenses_core import make_app
from vexpenses_core.identity import IdentityCache
from vexpenses_core.models import AuthSession, User
from vexpenses_core.settings import ConfigurationError
from vexpenses_core.testing import make_user


@pytest.fixture
def app(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    app.user_id, app.token = make_user(app.app.registry, email="cache@example.com",
                                       password="password123")
    return app


def me(app, token=None, status=200):
    return app.get("/api/v1/user/me", status=status,
                   headers={"Authorization": f"Bearer {token or app.token}"})


def count_queries(app):
    """A list that collects each SQL statement the app's engine runs."""
    statements = []
    sa.event.listen(app.app.registry.dbengine, "before_cursor_execute",
                    lambda conn, cursor, statement, *args: statements.append(statement))
    return statements


def run_sql(app, statement):
    session = app.app.registry.dbsession_factory()
    session.execute(statement)
    session.commit()
    session.close()


def test_a_second_request_reads_no_database(app):
    first = me(app).json
    statements = count_queries(app)
    second = me(app).json
    assert statements == []
    assert second == first  # same user object, same timestamps, to the microsecond


def test_the_password_hash_is_never_cached(app):
    me(app)
    client = app.app.registry.redis
    prefix = app.app.registry.settings["vexpenses.redis_prefix"]
    keys = list(client.scan_iter(f"{prefix}identity:*"))
    assert keys
    stored = b"".join(value for key in keys for value in client.hgetall(key).values())
    assert b"cache@example.com" in stored and b"argon2" not in stored


def test_logout_ends_a_cached_session_at_once(app):
    me(app)
    app.get("/api/v1/user/logout", headers={"Authorization": f"Bearer {app.token}"}, status=201)
    me(app, status=401)


def test_logout_all_ends_every_cached_session(app):
    login = app.post_json("/api/v1/user/authenticate",
                          {"email": "cache@example.com", "password": "password123"})
    other = login.json["data"]["token"]
    me(app)
    me(app, other)
    app.post("/api/v1/user/logout-all", headers={"Authorization": f"Bearer {other}"},
             status=201)
    me(app, status=401)
    me(app, other, status=401)


def test_refresh_reuse_ends_the_cached_session(app):
    login = app.post_json("/api/v1/user/authenticate",
                          {"email": "cache@example.com", "password": "password123"}).json["data"]
    me(app, login["token"])
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": login["refresh_token"]},
                  status=201)
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": login["refresh_token"]},
                  status=401)  # reuse: the whole session ends
    me(app, login["token"], status=401)


def test_deleting_the_user_through_the_orm_is_seen_at_once(app):
    me(app)
    session = app.app.registry.dbsession_factory()
    session.delete(session.get(User, app.user_id))
    session.commit()
    session.close()
    me(app, status=401)


def test_an_unnamed_bulk_update_forgets_everyone(app):
    me(app)
    run_sql(app, sa.update(AuthSession).values(revoked_at=datetime.datetime.now(datetime.UTC)))
    me(app, status=401)


def test_a_change_is_seen_by_the_next_request(app):
    me(app)
    run_sql(app, sa.update(User).where(User.id == app.user_id).values(name="Renamed Person")
            .execution_options(vexpenses_users=[app.user_id]))
    assert me(app).json["data"]["name"] == "Renamed Person"


def test_a_cached_user_joins_the_request_session_and_its_changes_are_saved(app):
    me(app)  # now cached
    registry = app.app.registry
    env = prepare(registry=registry, request=Request.blank(
        "/", headers={"Authorization": f"Bearer {app.token}"}))
    request = env["request"]
    try:
        with request.tm:
            user = request.identity
            assert user.id == app.user_id
            assert request.dbsession.execute(sa.text("SELECT 1")).scalar() == 1
            assert user in request.dbsession
            assert user.password_hash.startswith("$argon2id$")  # loaded on first access
            user.name = "Changed Through Identity"
    finally:
        env["closer"]()
    assert me(app).json["data"]["name"] == "Changed Through Identity"


def test_a_change_to_one_requests_identity_is_not_served_to_the_next(app):
    # The cache keeps each entry's decoded fields; every request must still
    # get a user of its own, whatever the last one did to its copy.
    name = me(app).json["data"]["name"]  # now cached
    registry = app.app.registry
    for _ in range(2):
        env = prepare(registry=registry, request=Request.blank(
            "/", headers={"Authorization": f"Bearer {app.token}"}))
        try:
            user = env["request"].identity
            assert user.name == name
            user.name = "Never Saved"  # and no commit
        finally:
            env["closer"]()
    assert me(app).json["data"]["name"] == name


def test_with_the_cache_off_sql_by_hand_is_seen_at_once(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.identity_cache_seconds": "0"})
    app.user_id, app.token = make_user(app.app.registry)
    me(app)
    with app.app.registry.dbengine.begin() as conn:  # behind the app's back
        conn.execute(sa.text("UPDATE auth_sessions SET revoked_at = created_at"))
    me(app, status=401)


def test_a_fill_that_raced_a_logout_is_dropped(app):
    registry = app.app.registry
    cache = registry.identity_cache
    session = registry.dbsession_factory()
    user = session.get(User, app.user_id)
    expires = session.scalar(sa.select(AuthSession.expires_at)
                             .where(AuthSession.user_id == app.user_id))
    session.close()
    _, gen = cache.get(app.user_id, "another-session")  # a request misses...
    cache.forget([app.user_id])  # ...a logout commits meanwhile...
    cache.put(user, expires, "another-session", gen)  # ...and its fill comes too late
    assert cache.get(app.user_id, "another-session")[0] is None


def test_requests_fall_back_to_the_database_when_redis_is_down(app):
    registry = app.app.registry
    registry.identity_cache = IdentityCache(
        redis.Redis(port=1, socket_connect_timeout=0.2), "x:", 300)
    assert me(app).json["data"]["email"] == "cache@example.com"


def test_a_logout_that_cannot_reach_the_cache_ends_nothing_and_says_so(app):
    """Had it committed, the session cached in Redis would outlive it once Redis is back."""
    me(app)  # cached
    registry = app.app.registry
    cache = registry.identity_cache
    cache.redis, reachable = redis.Redis(port=1, socket_connect_timeout=0.2), cache.redis
    answer = app.get("/api/v1/user/logout", status=503,
                     headers={"Authorization": f"Bearer {app.token}"})
    assert answer.json == {"status": False, "message": "The service is temporarily unavailable.",
                           "errors": answer.json["errors"]}
    cache.redis = reachable
    me(app)  # still logged in: the logout did not happen
    app.get("/api/v1/user/logout", headers={"Authorization": f"Bearer {app.token}"}, status=201)
    me(app, status=401)


def test_without_a_shared_redis_the_cache_is_off(testapp):
    """The embedded default's Redis lives in one process; a CLI command could not reach it."""
    testapp.user_id, testapp.token = make_user(testapp.app.registry)
    me(testapp)
    statements = count_queries(testapp)
    me(testapp)
    assert statements  # read from the database
    assert not list(testapp.app.registry.redis.scan_iter("*identity*"))


def test_a_logout_in_one_process_is_seen_by_another_at_once(make_testapp, redis_url):
    # Copies kept for 2 s, so that only the logout's wait can make this pass.
    shared = {"vexpenses.redis_url": redis_url, "vexpenses.identity_cache_local_ms": "2000",
              "vexpenses.redis_prefix": f"test:{uuid.uuid4().hex}:"}
    web1, web2 = make_testapp(**shared), make_testapp(**shared)
    _, token = make_user(web1.app.registry, email="two@example.com")
    assert me(web2, token).json["data"]["email"] == "two@example.com"  # cached in Redis
    me(web2, token)  # and now copied in web2
    assert web2.app.registry.identity_cache.local
    web1.get("/api/v1/user/logout", headers={"Authorization": f"Bearer {token}"}, status=201)
    me(web2, token, status=401)


class CountingReader:
    def __init__(self, reader):
        self.reader, self.calls = reader, 0

    def hmget(self, *args):
        self.calls += 1
        return self.reader.hmget(*args)


def test_a_busy_token_asks_redis_once_per_window(make_testapp, redis_url, monkeypatch):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.identity_cache_local_ms": "500"})
    _, token = make_user(app.app.registry, email="busy@example.com")
    me(app, token)  # cached in Redis
    cache = app.app.registry.identity_cache
    cache.reader = reader = CountingReader(cache.reader)
    now = [1000.0]
    monkeypatch.setattr("vexpenses_core.identity.time.monotonic", lambda: now[0])
    for _ in range(5):
        me(app, token)
        now[0] += 0.1
    assert reader.calls == 1
    now[0] += 0.1  # 0.6 s after the question: the copy is too old
    me(app, token)
    assert reader.calls == 2


def test_with_no_window_every_request_asks_redis(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.identity_cache_local_ms": "0"})
    _, token = make_user(app.app.registry, email="every@example.com")
    me(app, token)
    cache = app.app.registry.identity_cache
    cache.reader = reader = CountingReader(cache.reader)
    for _ in range(3):
        me(app, token)
    assert reader.calls == 3 and not cache.local


def test_a_change_answers_only_once_every_copy_has_expired(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.identity_cache_local_ms": "300"})
    _, token = make_user(app.app.registry, email="wait@example.com")
    me(app, token)
    started = time.monotonic()
    app.patch_json("/api/v1/user/me", {"name": "Renamed"},
                   headers={"Authorization": f"Bearer {token}"})
    assert time.monotonic() - started >= 0.3
    me(app, token)  # a read forgets nothing, so it does not wait
    assert me(app, token).json["data"]["name"] == "Renamed"


@pytest.mark.parametrize("value", ["-1", "2001", "soon"])
def test_the_window_must_be_0_to_2000_ms(tmp_path, environ_clean, value):
    with pytest.raises(ConfigurationError, match="vexpenses.identity_cache_local_ms"):
        make_app({"vexpenses.database_url": f"sqlite:///{tmp_path}/a.db",
                  "vexpenses.identity_cache_local_ms": value})


SECOND_PROCESS = """
import json, os, webtest
from vexpenses_core import make_app
app = webtest.TestApp(make_app(json.loads(os.environ["SETTINGS"])))
res = app.get("/api/v1/user/me", headers={"Authorization": "Bearer " + os.environ["TOKEN"]})
print(res.json["data"]["email"])
"""


def test_a_fresh_process_serves_an_identity_another_one_cached(app):
    """Its first User comes from the cache, before any query has set up the ORM."""
    me(app)
    settings = {name: value for name, value in app.app.registry.settings.items()
                if name.startswith("vexpenses.") and isinstance(value, str)}
    out = subprocess.run([sys.executable, "-c", SECOND_PROCESS], capture_output=True, text=True,
                         env=dict(os.environ, SETTINGS=json.dumps(settings), TOKEN=app.token),
                         timeout=60)
    assert out.stdout.strip() == "cache@example.com", out.stderr[-3000:]


def test_a_user_the_session_already_loaded_is_the_identity(app):
    me(app)  # now cached
    env = prepare(registry=app.app.registry, request=Request.blank(
        "/", headers={"Authorization": f"Bearer {app.token}"}))
    request = env["request"]
    try:
        with request.tm:
            loaded = request.dbsession.get(User, app.user_id)  # before anyone asked who it is
            assert request.identity is loaded
    finally:
        env["closer"]()
