"""Schemathesis proves the published schema: issue 9, class 4 (docs/security.md).

The assembled service (the core and the plugins under plugins/), served by
waitress with real Redis, is fuzzed from its own /api/v1/openapi.json with a
fixed seed, on SQLite and on MariaDB. Any server error, any response outside
the schema and any schema-violating request that is accepted fails the test.
"""

import uuid

import pytest
from pyramid.scripting import prepare

from vexpenses_core import fuzzing
from vexpenses_core.plugins import installed_plugins
from vexpenses_core.testing import live_server, make_user

SERVICE_PLUGINS = ("csv_import", "audit_log", "mailer")


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return " ".join(name for name in SERVICE_PLUGINS if name in installed_plugins())


def new_session_token(registry, user_id):
    """A new login session for the user, as authenticate would make: its access token."""
    from vexpenses_core.accounts.services import AuthService
    from vexpenses_core.models import User

    env = prepare(registry=registry)
    request = env["request"]
    try:
        with request.tm:
            user = request.dbsession.get(User, user_id)
            _, token, _, _ = AuthService(request).start_session(user)
    finally:
        env["closer"]()
    return token


def fuzz_settings(base_url, redis_url, upload_dir):
    return {
        "vexpenses.base_url": base_url,
        "vexpenses.redis_url": redis_url,
        "vexpenses.upload_dir": str(upload_dir),
        "vexpenses.mailer.backend": "console",
        # The fuzzer would spend its budget on 429s; 429 is declared where a
        # limiter answers, and test_rate_limited_answers_match_the_schema
        # holds it to the schema.
        "vexpenses.ratelimit.enabled": "false",
    }


@pytest.fixture
def served_app(make_testapp, redis_url, tmp_path):
    def make(base_url):
        return make_testapp(**fuzz_settings(base_url, redis_url, tmp_path / "uploads"))

    with live_server(make) as testapp:
        yield testapp
        audit_log = getattr(testapp.app.registry, "audit_log", None)
        if audit_log is not None:  # no row written after the tables are emptied
            audit_log.close()


def token_source(registry):
    """token_for(operation): an admin's for admin-only operations (they declare 403),
    a plain user's for the rest; a new session every time."""
    users = {
        admin: make_user(registry, email=f"fuzz-{uuid.uuid4().hex[:8]}@example.com",
                         is_admin=admin, name="Fuzz User")[0]
        for admin in (False, True)
    }

    def token_for(operation):
        admin_only = "403" in operation.definition.raw.get("responses", {})
        return new_session_token(registry, users[admin_only])

    return token_for


def test_the_service_keeps_to_its_published_schema(served_app):
    registry = served_app.app.registry
    findings = fuzzing.fuzz(served_app.base_url, token_source(registry))
    assert findings == [], "\n\n".join(findings)
