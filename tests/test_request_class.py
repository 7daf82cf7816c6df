"""The app's request class carries every add_request_method extension, made once."""

from pyramid.interfaces import IRequestExtensions


def test_requests_share_one_class_with_every_extension(testapp):
    router = testapp.app
    extensions = router.registry.queryUtility(IRequestExtensions)
    assert router.request_extensions is None  # nothing left to apply per request
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/api/v1/user/me", "SERVER_NAME": "x",
               "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
    first = router.request_context(dict(environ)).request
    second = router.request_context(dict(environ)).request
    assert type(first) is type(second)
    for name in [*extensions.methods, *extensions.descriptors]:
        assert name in type(first).__dict__, name
    assert first.redis_key("a", 1).endswith("a:1")  # a method, bound to its request
    assert first.pm is router.registry.pm  # a reified property
    assert first.tm is not second.tm  # each request its own


def test_an_api_answer_still_has_its_headers(testapp):
    answer = testapp.get("/api/v1/user/me", status=401)
    assert answer.headers["Cache-Control"] == "no-store"
    assert len(answer.headers["X-Request-ID"]) == 32
