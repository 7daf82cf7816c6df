"""Every Redis user through a ``redis+sentinel://`` URL, and what a failover may cost.

Each test starts its own primary, replica and three sentinels
(:func:`~vexpenses_core.testing.sentinel.redis_sentinel`).
"""

import io

import pytest
import redis
import sqlalchemy as sa
from taskiq.exceptions import SendTaskError

from vexpenses_core.check import Report, check_redis
from vexpenses_core.models import TaskOutbox
from vexpenses_core.testing import bearer, make_user, wait_for

# What these tests exercise is Redis's; one database backend is enough.
one_backend = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
UNAVAILABLE = {"status": False, "message": "The service is temporarily unavailable.",
               "errors": "The service is temporarily unavailable."}


@pytest.fixture
def app(redis_sentinel, make_testapp):
    app = make_testapp(**{"vexpenses.redis_url": redis_sentinel.url,
                          "vexpenses.redis_timeout": "1",
                          "vexpenses.ratelimit.login_ip": "2 per minute"})
    app.primary = redis.Redis(port=redis_sentinel.primary_port)
    app.prefix = app.app.registry.settings["vexpenses.redis_prefix"]
    return app


def keys_on(server, pattern):
    return [key.decode() for key in server.scan_iter(match=pattern)]


def login(app, password="password123", status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": "ana@example.com", "password": password}, status=status)


@one_backend
def test_the_shared_client_writes_to_the_master_the_sentinels_name(app):
    registry = app.app.registry
    registry.redis.set(app.prefix + "hello", "world")
    assert app.primary.get(app.prefix + "hello") == b"world"


@one_backend
def test_the_identity_cache_lives_on_the_master(app):
    _, token = make_user(app.app.registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    assert keys_on(app.primary, app.prefix + "identity:*")


@one_backend
def test_rate_limits_count_on_the_master(app):
    make_user(app.app.registry, email="ana@example.com", password="password123")
    login(app, "wrong-password", 401)
    login(app, "wrong-password", 401)
    assert "Retry-After" in login(app, status=429).headers
    assert keys_on(app.primary, app.prefix + "limits*")


@one_backend
def test_a_task_goes_to_the_stream_on_the_master(app):
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert app.primary.xlen(app.app.registry.settings["vexpenses.tasks.queue"]) == 1
    assert outbox(app.app.registry) == []


def test_check_pings_the_master_through_the_sentinels(redis_sentinel):
    out = io.StringIO()
    check_redis({"vexpenses.redis_url": redis_sentinel.url, "vexpenses.redis_timeout": 1},
                Report(out))
    assert out.getvalue() == f"ok: Redis {redis_sentinel.url} can be reached\n"


@one_backend
def test_while_no_master_answers_requests_get_a_503_then_work_again(app, redis_sentinel):
    _, token = make_user(app.app.registry, email="ana@example.com", password="password123")
    login(app)
    redis_sentinel.kill_primary()
    # The sentinels still name the dead primary: the limiter cannot count the attempt.
    refused = login(app, status=503)
    assert refused.json == UNAVAILABLE
    assert int(refused.headers["Retry-After"]) > 0
    # The identity cache is optional: /me reads the database meanwhile.
    app.get("/api/v1/user/me", headers=bearer(token), status=200)
    redis_sentinel.wait_for_failover()
    assert wait_for(lambda: login(app, status="*").status_int == 201, 15)


# -- what a failover may lose ----------------------------------------------------------


def outbox(registry):
    with registry.dbengine.connect() as conn:
        return conn.execute(sa.select(TaskOutbox.task)).scalars().all()


@one_backend
def test_a_task_no_replica_confirmed_stays_in_the_outbox_and_is_sent_after(app, redis_sentinel):
    registry = app.app.registry
    # Cut until the primary is dead: the request waits up to a second for a
    # replica, and a replica back sooner would still get the task.
    redis_sentinel.cut_replica(seconds=4)
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert outbox(registry) == ["hello.greet"]  # the send after commit raised
    redis_sentinel.kill_primary()
    _, port = redis_sentinel.wait_for_failover()
    stream = registry.settings["vexpenses.tasks.queue"]

    def resent():
        try:
            return registry.queue.resend_outbox(older_than=0)
        except SendTaskError:  # no replica yet: the new master's grace period
            return 0

    assert wait_for(resent, 30)
    assert outbox(registry) == []
    assert redis.Redis(port=port).xlen(stream) == 1
