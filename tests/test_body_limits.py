"""Issue 9, class 5: body limits are enforced before the work, at the edge.

waitress reads a whole body before the app runs, so the app's 413 alone
came too late. vexpenses_core.server refuses what a route can't take once
the headers are in; the shipped inis run it, with waitress' own limit just
above the largest route's.
"""

import configparser
import json
import pathlib
import select
import socket
import threading

import paste.deploy
import pytest
import webob
from waitress import wasyncore

from vexpenses_core import server
from vexpenses_core.accounts.views import SMALL_BODY_BYTES

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED_INIS = ["development.ini", "production.ini", "examples/host_app/host.ini"]
MIB = 1024 * 1024

# Routes anyone may call: none takes more than SMALL_BODY_BYTES.
OPEN_ROUTES = ["/api/v1/user/register", "/api/v1/user/authenticate",
               "/api/v1/user/refresh-token", "/api/v1/user/forgot-password",
               "/api/v1/user/recover-password"]


@pytest.fixture
def app(make_testapp, tmp_path):
    return make_testapp(**{"vexpenses.plugins": "csv_import",
                           "vexpenses.upload_dir": str(tmp_path / "uploads")})


@pytest.fixture
def live(app):
    """The app behind vexpenses_core.server, with production.ini's server limit."""
    srv = server.create_server(app.app, host="127.0.0.1", port=0, threads=2,
                               max_request_body_size=ini_limit("production.ini"))
    stop = threading.Event()

    def run():  # srv.run() can't be stopped from outside without a race on its sockets
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=srv._map, count=1)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield srv.effective_port
    stop.set()
    thread.join(5)
    for channel in list(srv._map.values()):
        channel.close()
    srv.task_dispatcher.shutdown()


def ini_server(name):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / name)
    return parser


def ini_limit(name):
    return int(ini_server(name)["server:main"]["max_request_body_size"])


def send_until_answered(port, path, total, chunked=False, headers=()):
    """POST a ``total``-byte body in 64 KiB pieces, stopping once the server answers.

    Returns ``(status, json body, bytes sent)``.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    lines = [f"POST {path} HTTP/1.1", "Host: localhost", "Content-Type: application/json",
             *headers]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    piece, sent = b"x" * 65536, 0
    try:
        while sent < total and not select.select([sock], [], [], 0)[0]:
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            sock.sendall(data)
            sent += len(piece)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed
    response = b""
    while b"\r\n\r\n" not in response or not response.rstrip().endswith(b"}"):
        data = sock.recv(65536)
        if not data:
            break
        response += data
    sock.close()
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    return status, json.loads(body), sent


# The hostile bodies: (route, size, chunked, headers).
HOSTILE = [
    ("/api/v1/user/authenticate", 5_000_000, False, ()),
    ("/api/v1/user/authenticate", 50 * MIB, True, ()),
    ("/api/v1/user/register", 50 * MIB, False, ()),
    ("/api/v1/user/forgot-password", 50 * MIB, True, ()),
    ("/api/v1/user/refresh-token", 50 * MIB, False, ()),
    ("/api/v1/user/upload", 50 * MIB, False, ()),  # needs a token, sent none
    ("/api/v1/user/upload", 50 * MIB, True, ()),
    ("/api/v1/no-such-route", 50 * MIB, False, ()),
    ("/api/v1/user/authenticate", 50 * MIB, False, ("Expect: 100-continue",)),
]


@pytest.mark.parametrize("path, size, chunked, headers", HOSTILE)
def test_the_server_refuses_before_the_body_is_sent(live, path, size, chunked, headers):
    status, body, sent = send_until_answered(live, path, size, chunked, headers)
    assert status == 413
    assert body["status"] is False and "may be at most" in body["errors"]
    assert sent < size  # answered long before the client was done


def test_a_body_the_route_takes_reaches_the_app(live):
    status, body, _ = send_until_answered(live, "/api/v1/user/authenticate", 100)
    assert status == 422  # "xxx...": read whole, and judged by the app


def test_just_over_a_route_limit_the_app_answers(live):
    status, body, sent = send_until_answered(live, "/api/v1/user/authenticate",
                                             SMALL_BODY_BYTES + 1)
    assert status == 413
    assert body["errors"] == f"The request body may be at most {SMALL_BODY_BYTES} bytes."


def test_an_authorized_upload_may_be_large(live):
    """With a token (any: the server can't check it) the upload route takes its own limit."""
    status, _, sent = send_until_answered(live, "/api/v1/user/upload", 3 * MIB,
                                          headers=("Authorization: Bearer not-checked-here",))
    assert status == 401  # the app read the body, then refused the token
    assert sent == 3 * MIB


@pytest.mark.parametrize("path", OPEN_ROUTES)
def test_open_routes_take_small_bodies_only(app, path):
    res = app.post(path, "x" * (SMALL_BODY_BYTES + 1), content_type="application/json",
                   status=413)
    assert res.json["status"] is False


class Unreadable:
    def read(self, *args):
        raise AssertionError("the body was read")

    readline = read


def test_an_upload_without_a_valid_token_is_401_before_its_body_is_read(app):
    request = webob.Request.blank(
        "/api/v1/user/upload", method="POST",
        headers={"Authorization": "Bearer nope", "Content-Length": str(50 * MIB),
                 "Content-Type": "multipart/form-data; boundary=x"})
    request.environ["wsgi.input"] = Unreadable()
    response = request.get_response(app.app)
    assert response.status_int == 401


def test_a_chunked_body_is_read_only_up_to_the_limit(app):
    read = []

    class Endless:
        def read(self, size=-1):
            assert size != -1, "read whole"
            read.append(size)
            return b"x" * size

    request = webob.Request.blank("/api/v1/user/authenticate", method="POST",
                                  headers={"Transfer-Encoding": "chunked",
                                           "Content-Type": "application/json"})
    request.environ["wsgi.input"] = Endless()
    response = request.get_response(app.app)
    assert response.status_int == 413
    assert sum(read) <= SMALL_BODY_BYTES + 1


@pytest.mark.parametrize("name", SHIPPED_INIS)
def test_shipped_inis_run_the_limiting_server(name, monkeypatch):
    assert ini_server(name)["server:main"]["use"] == "call:vexpenses_core.server:serve_paste"
    seen = {}
    monkeypatch.setattr(server, "serve", lambda app, **kw: seen.update(app=app, **kw))
    run = paste.deploy.loadserver(f"config:{ROOT / name}")  # as pserve does
    run("the app")
    assert seen["app"] == "the app" and seen["_server"] is server.create_server
    assert int(seen["max_request_body_size"]) == ini_limit(name)


@pytest.mark.parametrize("name", SHIPPED_INIS)
def test_shipped_inis_fit_waitress_to_the_largest_route(make_testapp, tmp_path, name):
    """waitress' limit: above the largest body a route takes, not far above."""
    ini = ini_server(name)
    plugins = ini["app:main"].get("vexpenses.plugins", "")
    app = make_testapp(**{"vexpenses.plugins": plugins,
                          "vexpenses.upload_dir": str(tmp_path / "uploads")})
    largest = max(limit for limit, _ in app.app.registry.vexpenses_body_limits.values())
    assert largest + server.HEADROOM <= ini_limit(name) <= largest + 2 * MIB
