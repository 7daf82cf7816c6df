"""Schemathesis proves the published schema: issue 9, class 4 (docs/security.md).

The assembled service (the core and the plugins under plugins/), served by
waitress with real Redis, is fuzzed from its own /api/v1/openapi.json with a
fixed seed, on SQLite and on MariaDB. Any server error, any response outside
the schema and any schema-violating request that is accepted fails the test.
"""

import uuid

import pytest
import requests
import schemathesis
from pyramid.scripting import prepare
from schemathesis.specs.openapi import checks as openapi_checks

from vexpenses_core import fuzzing
from vexpenses_core.plugins import installed_plugins
from vexpenses_core.testing import live_server, make_user

SERVICE_PLUGINS = ("csv_import", "audit_log", "mailer")


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return " ".join(name for name in SERVICE_PLUGINS if name in installed_plugins())


def new_session_token(registry, user_id):
    """A new login session for the user, as authenticate would make: its access token."""
    from vexpenses_core.accounts.auth import AuthService
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
    a plain user's for the rest; a new user every time, since the fuzzed admin
    routes delete and disable users (fuzzing.fuzz)."""

    def token_for(operation):
        admin_only = "403" in operation.definition.raw.get("responses", {})
        return make_user(registry, email=f"fuzz-{uuid.uuid4().hex[:12]}@example.com",
                         is_admin=admin_only, name="Fuzz User")[1]

    return token_for


def test_the_service_keeps_to_its_published_schema(served_app):
    registry = served_app.app.registry
    findings = fuzzing.fuzz(served_app.base_url, token_source(registry))
    assert findings == [], "\n\n".join(findings)


# Hostile requests the schema must still describe: each answer's status, content
# type, headers and body are checked against the published document. Each row is
# (method, path, request keywords, expected status).
DEEP = b'{"a":' * 2000 + b"1" + b"}" * 2000
HOSTILE = [
    ("GET", "/api/v1/user", {"params": {"page": "0"}}, 200),
    ("GET", "/api/v1/user", {"params": {"page": "-1"}}, 200),
    ("GET", "/api/v1/user", {"params": {"page": "abc"}}, 200),
    ("GET", "/api/v1/user", {"params": {"page": "9" * 40}}, 200),
    ("GET", "/api/v1/user", {"params": {"cursor": "not a cursor"}}, 422),
    ("GET", "/api/v1/user", {"params": {"name": "x" * 256}}, 422),
    ("GET", "/api/v1/log", {"params": {"page": "0", "user_id": ""}}, 200),
    ("GET", "/api/v1/log", {"params": {"to": "2024-02-30"}}, 422),
    ("GET", "/api/v1/log", {"params": {"from": "2024-01-02", "to": "2024-01-01"}}, 422),
    ("GET", "/api/v1/log", {"params": {"user_id": "-1"}}, 422),
    ("GET", "/api/v1/log/99999999999999999999", {}, 404),
    ("GET", "/api/v1/mailer/deliveries", {"params": {"page": "0"}, "admin": True}, 200),
    ("GET", "/api/v1/mailer/deliveries", {"params": {"status": "nope"}, "admin": True}, 422),
    ("GET", "/api/v1/mailer/deliveries", {}, 403),
    ("GET", "/api/v1/user/me", {"token": None}, 401),
    ("GET", "/api/v1/user/99999999999999999999", {"admin": True}, 404),
    ("GET", "/api/v1/user/999999", {}, 403),
    ("PATCH", "/api/v1/user/999999", {"json": {"is_admin": "yes"}}, 403),
    ("DELETE", "/api/v1/user/me", {"json": {"current_password": 1}}, 422),
    ("GET", "/api/v1/user/me", {"token": "garbage"}, 401),
    ("DELETE", "/api/v1/user/import-status/1", {"token": None}, 401),
    ("GET", "/api/v1/user/import-status/1/errors", {"token": None}, 401),
    ("GET", "/api/v1/user/import-status/999999", {}, 404),
    ("POST", "/api/v1/user/refresh-token", {"data": b"[null, null]"}, 422),
    ("POST", "/api/v1/user/refresh-token", {"data": b"\x00"}, 422),
    ("POST", "/api/v1/user/register", {"data": DEEP}, 422),
    ("POST", "/api/v1/user/register", {"data": b'{"name": 1e999}'}, 422),
    ("POST", "/api/v1/user/register", {"data": b"x" * (2 * 1024 * 1024)}, 413),
    ("POST", "/api/v1/user/authenticate",
     {"data": b'{"email": "a@b.c"}', "headers": {"Content-Type": "multipart/form-data"}}, 422),
    ("POST", "/api/v1/user/forgot-password", {"json": {"email": "\u202eevil@example.com"}}, 422),
    ("POST", "/api/v1/user/upload", {"files": {"file": ("a.csv", b"")},
                                     "data": {"send_invitations": "{}"}}, 201),
    ("POST", "/api/v1/user/upload", {"data": b"file=x",
                                     "headers": {"Content-Type": "multipart/form-data"}}, 422),
]

def send(served, method, path, token=None, **kwargs):
    headers = dict(kwargs.pop("headers", {}))
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, served.base_url + path, headers=headers, timeout=30,
                            **kwargs)


def assert_declared(served, method, path, response):
    """The answer's status, content type, headers and body are what the schema declares."""
    schema = schemathesis.openapi.from_url(served.base_url + fuzzing.OPENAPI_PATH)
    operation = schema.find_operation_by_path(method, path)
    assert operation is not None, f"{method} {path} is not in the published schema"
    checks = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
              openapi_checks.response_headers_conformance,
              openapi_checks.response_schema_conformance]
    operation.Case(method=method).validate_response(response, checks=checks)


@pytest.fixture
def limited_app(make_testapp, redis_url, tmp_path):
    """The served service with its rate limits on, as deployed."""
    def make(base_url):
        settings = fuzz_settings(base_url, redis_url, tmp_path / "uploads")
        return make_testapp(**{**settings, "vexpenses.ratelimit.enabled": "true"})

    with live_server(make) as testapp:
        yield testapp
        audit_log = getattr(testapp.app.registry, "audit_log", None)
        if audit_log is not None:
            audit_log.close()


@pytest.mark.parametrize(("method", "path", "request_kwargs", "expected"), HOSTILE,
                         ids=[f"{m} {p} {i}" for i, (m, p, _, _) in enumerate(HOSTILE)])
def test_hostile_requests_get_answers_the_schema_declares(limited_app, method, path,
                                                          request_kwargs, expected):
    registry = limited_app.app.registry
    kwargs = dict(request_kwargs)
    admin = kwargs.pop("admin", False)
    if "token" in kwargs:
        token = kwargs.pop("token")
    else:
        user_id, _ = make_user(registry, email=f"h-{uuid.uuid4().hex[:8]}@example.com",
                               is_admin=admin)
        token = new_session_token(registry, user_id)
    response = send(limited_app, method, path, token, **kwargs)
    assert response.status_code == expected, response.text[:500]
    assert_declared(limited_app, method, path, response)


@pytest.mark.parametrize("path", ["/api/v1/user/authenticate", "/api/v1/user/forgot-password"])
def test_rate_limited_answers_match_the_schema(limited_app, path):
    body = {"email": "victim@example.com", "password": "wrong password"}
    answers = []
    for _ in range(30):  # well past every default limit
        response = send(limited_app, "POST", path, json=body)
        answers.append(response.status_code)
        if response.status_code == 429:
            break
    assert answers[-1] == 429, answers
    assert_declared(limited_app, "POST", path, response)
