"""The test server used for browser tests stops cleanly, even if its loop lost its trigger."""

import urllib.request

import webtest

from vexpenses_core.testing.server import live_server


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


def test_it_stops_when_its_trigger_was_closed_first():
    with live_server(lambda base_url: webtest.TestApp(hello)) as app:
        assert urllib.request.urlopen(app.base_url, timeout=5).read() == b"hello"
        app.server.trigger.close()  # what waitress does to a channel whose handler raised
    assert not app.server._map  # every socket closed, and the loop has returned
