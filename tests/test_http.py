"""Errors in the envelope (413, 422, 500), the admin-only introspection route,
the OpenAPI document and the docs page."""

import logging
import re

import pytest

from vexpenses_core.testing import make_user

NASTY_BODIES = [
    b"{",  # truncated
    b"[1, 2]",  # not an object
    b"\xff\xfe\x00",  # not UTF-8
    b'"just a string"',
    b"null",
    b"{\"name\": \"a\", }",  # trailing comma
    b"NaN",
]


@pytest.mark.parametrize("body", NASTY_BODIES)
def test_malformed_json_is_422_not_500(testapp, body):
    res = testapp.post("/api/v1/hello/greetings", body, content_type="application/json",
                       status=422)
    assert res.json["status"] is False
    assert "body" in res.json["errors"]


@pytest.mark.parametrize("payload", [
    {"name": None}, {"name": 123}, {"name": ["a"]}, {"name": {"x": 1}},
])
def test_wrong_types_are_422(testapp, payload):
    res = testapp.post_json("/api/v1/hello/greetings", payload, status=422)
    assert res.json["status"] is False


@pytest.mark.parametrize("payload", [
    {"name": "Ana", "delay": "1"}, {"name": "Ana", "delay": -1}, {"name": "Ana", "delay": 1e308},
])
def test_wrong_types_of_a_number_are_422(standin_app, payload):
    res = standin_app.post_json("/api/v1/standin/greetings", payload, status=422)
    assert res.json["status"] is False


def test_unknown_fields_are_ignored(testapp):
    testapp.post_json("/api/v1/hello/greetings", {"name": "Ana", "admin": True}, status=201)


def test_body_over_the_limit_is_413(make_testapp):
    app = make_testapp(**{"vexpenses.max_body_bytes": "100"})
    res = app.post("/api/v1/hello/greetings", b"{" + b" " * 200 + b"}",
                   content_type="application/json", status=413)
    assert res.json == {"status": False, "message": "The request body may be at most 100 bytes.",
                        "errors": "The request body may be at most 100 bytes."}


def test_server_error_hides_details_and_logs_them(standin_app, caplog):
    with caplog.at_level(logging.ERROR):
        res = standin_app.post_json("/api/v1/standin/greetings", {"name": "Ana", "fail": True},
                                status=500, headers={"X-Request-ID": "req-500"})
    assert res.json["message"] == "Server error."
    assert "Traceback" not in res.text and "RuntimeError" not in res.text
    record = next(r for r in caplog.records if r.name == "vexpenses_core.api")
    assert record.request_id == "req-500"
    assert "failing on purpose" in caplog.text


def test_non_api_404_is_not_json(testapp):
    res = testapp.get("/no-such-page", status=404)
    assert res.content_type != "application/json"


def test_plugins_route_is_admin_only(testapp):
    registry = testapp.app.registry
    _, user_token = make_user(registry, email="user@example.com")
    _, admin_token = make_user(registry, email="admin@example.com", is_admin=True)
    res = testapp.get("/api/v1/plugins", headers={"Authorization": f"Bearer {user_token}"},
                      status=403)
    assert res.json["message"] == "This action is unauthorized."
    res = testapp.get("/api/v1/plugins", headers={"Authorization": f"Bearer {admin_token}"})
    plugins = {p["name"]: p for p in res.json["data"]}
    assert plugins["hello"]["project"] == "vexpenses-example-hello"
    assert plugins["hello"]["version"] == "0.1.0"
    assert "vexpenses_tasks" in plugins["hello"]["hooks"]
    assert plugins["core"]["project"] == "vexpenses-core"


@pytest.mark.parametrize("header", [
    "Bearer not-a-jwt", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "JWT x",
])
def test_bad_tokens_are_401(testapp, header):
    res = testapp.get("/api/v1/plugins", headers={"Authorization": header}, status=401)
    assert res.json["status"] is False


def test_token_of_deleted_user_is_401(testapp):
    from vexpenses_core.models import User

    registry = testapp.app.registry
    user_id, token = make_user(registry, is_admin=True)
    session = registry.dbsession_factory()
    session.delete(session.get(User, user_id))
    session.commit()
    session.close()
    testapp.get("/api/v1/plugins", headers={"Authorization": f"Bearer {token}"}, status=401)


def test_vexpenses_openapi_hook_builds_a_31_document(testapp):
    doc = testapp.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert doc["components"]["schemas"]["Failure"]
    assert "/api/v1/hello/greetings/{id}" in doc["paths"]


def test_docs_page_uses_local_assets_only(testapp):
    page = testapp.get("/api/v1/docs")
    assert page.content_type == "text/html"
    assert '"/api/v1/docs/static/swagger-ui-bundle.js"' in page.text
    assert "cdn" not in page.text.lower() and "unpkg" not in page.text
    js = testapp.get("/api/v1/docs/static/swagger-ui-bundle.js")
    assert len(js.body) > 100_000
    testapp.get("/api/v1/docs/static/swagger-ui.css")
    testapp.get("/api/v1/docs/static/init.js")


def test_two_plugins_claiming_one_path_is_an_error(testapp):
    from vexpenses_core.openapi import PathCollector
    from vexpenses_core.settings import ConfigurationError

    paths = PathCollector()
    paths["/a"] = {}
    with pytest.raises(ConfigurationError, match="/a"):
        paths["/a"] = {}
    with pytest.raises(ConfigurationError, match="/a"):
        paths.setdefault("/a", {})
    with pytest.raises(ConfigurationError, match="/a"):
        paths.update({"/a": {}})


def test_vexpenses_openapi_conflict_fails_at_startup(tmp_path, environ_clean, monkeypatch):
    """Two contributors of one path stop the app from starting, not a later request."""
    import types

    from vexpenses_core import hookimpl, make_app
    from vexpenses_core.settings import ConfigurationError

    copycat = types.ModuleType("copycat")

    @hookimpl
    def vexpenses_openapi(spec):
        spec["paths"]["/api/v1/plugins"] = {}

    copycat.vexpenses_openapi = vexpenses_openapi
    ep = types.SimpleNamespace(load=lambda: copycat, dist=None)
    monkeypatch.setattr("vexpenses_core.plugins.installed_plugins", lambda: {"copycat": ep})
    with pytest.raises(ConfigurationError, match="/api/v1/plugins"):
        make_app({"vexpenses.database_url": f"sqlite:///{tmp_path}/c.db",
                  "vexpenses.plugins": "copycat"})


def test_openapi_documents_every_accounts_route(testapp):
    """Every route the app serves under /api/v1 is in the document."""
    from pyramid.interfaces import IRoutesMapper

    doc = testapp.get("/api/v1/openapi.json").json
    mapper = testapp.app.registry.getUtility(IRoutesMapper)
    # OpenAPI names a placeholder without the route's regex: {id:\d+} is {id}.
    served = {re.sub(r"\{(\w+):(?:[^{}]|\{[^}]*\})*\}", r"{\1}", route.pattern)
              for route in mapper.get_routes()
              if route.pattern.startswith("/api/v1/") and "docs" not in route.pattern}
    served.discard("/api/v1/user/")  # the trailing-slash twin of /api/v1/user
    assert served <= set(doc["paths"])
    assert doc["components"]["schemas"]["User"]["properties"].keys() == {
        "id", "name", "email", "birth_date", "created_at", "updated_at"}


@pytest.mark.parametrize("query", ["name=%ff", "email=%c3%28", "page=%80", "cursor=%fe%ff"])
def test_query_string_that_is_not_utf8_is_422(testapp, query):
    _, token = make_user(testapp.app.registry, email="q@example.com")
    res = testapp.get(f"/api/v1/user?{query}", headers={"Authorization": f"Bearer {token}"},
                      status=422)
    assert res.json["status"] is False


@pytest.mark.parametrize("body", [
    b'{"name": "\\ud800"}', b'{"email": "a\\udfff@b.c", "password": "x"}',
])
def test_lone_surrogates_in_json_are_422(testapp, body):
    for path in ("/api/v1/hello/greetings", "/api/v1/user/authenticate",
                 "/api/v1/user/register"):
        res = testapp.post(path, body, content_type="application/json", status=422)
        assert res.json["status"] is False
