"""Route matching that starts at a fixed path's route answers as Pyramid's loop does."""

import pytest
from pyramid.config import Configurator
from pyramid.request import Request

from vexpenses_core.routing import StraightRoutes

METHODS = ("GET", "POST", "PATCH", "DELETE", "HEAD")


def same_answers(mapper, paths):
    straight = StraightRoutes(mapper)
    for path in paths:
        for method in METHODS:
            request = Request.blank(path, method=method)
            want, got = mapper(request), straight(request)
            assert (got["route"] and got["route"].name) == (want["route"] and want["route"].name)
            assert got["match"] == want["match"], (method, path)


def test_the_app_routes_answer_as_pyramid_does(make_testapp):
    app = make_testapp(**{"vexpenses.plugins": "audit_log csv_import mailer"})
    straight = app.app.routes_mapper
    assert isinstance(straight, StraightRoutes)
    mapper = straight.mapper
    paths = ["/", "/nothing", "/api/v1/user/12", "/api/v1/user/12/logout-all",
             "/api/v1/user/sessions/abc", "/api/v1/docs/static/x.js", "/vexpenses-static/a.css",
             "/api/v1/user/me/", "/api/v1/user//me", "/API/v1/user/me", "/api/v1/user/me%20"]
    for route in mapper.get_routes():
        path = "/" + route.pattern.lstrip("/")
        paths += [path, path + "/", path + "x", path.rstrip("/") + "/extra"]
    same_answers(mapper, paths)
    assert "/api/v1/user/me" in straight.start


def test_an_earlier_pattern_keeps_a_fixed_path():
    with Configurator() as config:
        config.add_route("any", "/a/{x}")
        config.add_route("fixed", "/a/b")
        config.add_route("other", "/c")
    mapper = config.get_routes_mapper()
    straight = StraightRoutes(mapper)
    assert "/a/b" not in straight.start and straight.start["/c"] == 2
    assert straight(Request.blank("/a/b"))["route"].name == "any"


@pytest.mark.parametrize("method, name", [("GET", "read"), ("POST", "write"), ("PUT", "last")])
def test_a_route_whose_predicates_refuse_sends_the_search_on(method, name):
    with Configurator() as config:
        config.add_route("read", "/thing", request_method="GET")
        config.add_route("write", "/thing", request_method="POST")
        config.add_route("last", "/{anything}")
    mapper = config.get_routes_mapper()
    assert StraightRoutes(mapper)(Request.blank("/thing", method=method))["route"].name == name
    same_answers(mapper, ["/thing", "/thing/", "/other"])
