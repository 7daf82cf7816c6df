"""HTTP basics shared by every /api route: envelope, errors, request ids, limits."""

import pytest


def test_unknown_api_route_is_json_404(testapp):
    res = testapp.get("/api/v1/no-such-thing", status=404)
    assert res.content_type == "application/json"
    assert res.json == {"status": False, "message": "Not found.", "errors": "Not found."}


def test_wrong_method_is_405_with_allow_header(testapp):
    res = testapp.delete("/api/v1/openapi.json", status=405)
    assert res.json["status"] is False
    assert res.headers["Allow"] == "GET"


def test_admin_route_without_token_is_401(testapp):
    res = testapp.get("/api/v1/plugins", status=401)
    assert res.json["message"] == "Unauthenticated."
    assert res.headers["WWW-Authenticate"] == "Bearer"


def test_request_id_is_generated_and_returned(testapp):
    res = testapp.get("/api/v1/openapi.json")
    assert len(res.headers["X-Request-ID"]) == 32


def test_given_request_id_is_echoed(testapp):
    res = testapp.get("/api/v1/openapi.json", headers={"X-Request-ID": "abc-123"})
    assert res.headers["X-Request-ID"] == "abc-123"


@pytest.mark.parametrize("bad", ["a" * 200, "spa ce", "<script>", "a;b", "é"])
def test_unsafe_request_id_is_replaced(testapp, bad):
    res = testapp.get("/api/v1/openapi.json", headers={"X-Request-ID": bad})
    assert res.headers["X-Request-ID"] != bad
    assert len(res.headers["X-Request-ID"]) == 32
