"""Issue 9, class 6: forgot-password does the same work for a known and an
unknown address before it answers, so neither its answer nor its time tells
whether the address has an account."""

import json

import pytest
import redis
from sqlalchemy import event

from vexpenses_core.accounts.validation import normalize_email
from vexpenses_core.testing import make_user

ADDRESSES = ["ana@example.com", "nobody@example.com", "ANA@example.com", "ana+x@example.com"]


@pytest.fixture
def app(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.forgot_email": "100 per hour",
                          "vexpenses.ratelimit.forgot_ip": "100 per hour"})
    make_user(app.app.registry, email="ana@example.com", password="a password 123")
    return app


def statements(engine, run):
    """The SQL statements ``run()`` executes, parameters left out."""
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen


def queued(app):
    """The tasks waiting in the Redis stream: (name, args), oldest first."""
    settings = app.app.registry.settings
    client = redis.Redis.from_url(settings["vexpenses.redis_url"])
    try:
        entries = client.xrange(settings["vexpenses.tasks.queue"])
    finally:
        client.close()
    messages = [json.loads(fields[b"data"]) for _, fields in entries]
    return [(m["task_name"], m["args"]) for m in messages]


def forgot(app, email):
    return app.post_json("/api/v1/user/forgot-password", {"email": email})


@pytest.mark.parametrize("email", ADDRESSES)
def test_known_and_unknown_addresses_do_the_same_work(app, email):
    engine = app.app.registry.dbengine
    known = statements(engine, lambda: forgot(app, "ana@example.com"))
    other = statements(engine, lambda: forgot(app, email))
    assert other == known
    assert queued(app) == [("accounts.password_reset", ["ana@example.com"]),
                           ("accounts.password_reset", [normalize_email(email)])]


def test_hook_password_reset_requested_runs_in_the_task_not_the_request(app):
    from vexpenses_core import hookimpl

    links = []

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, request, user, reset_url):
            links.append((request.matched_route, user.email))

    app.app.registry.pm.register(Catcher())
    forgot(app, "ana@example.com")
    assert links == []  # nothing is looked up before the answer
    from vexpenses_core.accounts.tasks import password_reset
    from vexpenses_core.tasks import run_task

    for name, args in queued(app):
        assert name == "accounts.password_reset"
        run_task(app.app.registry, password_reset, args, {})
    run_task(app.app.registry, password_reset, ["nobody@example.com"], {})
    assert links == [(None, "ana@example.com")]  # in a task, for the account only
