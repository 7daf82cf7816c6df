"""waitress, refusing a body its route can't take as soon as the headers arrive.

waitress reads a whole request body, up to its ``max_request_body_size``,
before the app runs, and that limit must fit the largest upload. So the
app's own 413 for, say, 100 MiB sent to ``/authenticate`` came only after
waitress had received and spooled all of it. Here waitress' parser looks
the path up in the app's routes once the headers are in, and lowers its
limit to the largest body that path takes (vexpenses_core.bodylimits): a
larger ``Content-Length`` gets a 413 before a byte of the body is read,
and a chunked body is cut off near the limit. A request without an
``Authorization`` header gets no more than ``vexpenses.max_body_bytes`` on
a route that needs a token.

Use it in the ini in place of ``egg:waitress#main``, with the same options::

    [server:main]
    use = call:vexpenses_core.server:serve_paste

and one more, ``listen_fd``: serve on a listening socket the process
inherited, as that file descriptor, in place of binding ``listen``. Under
supervisord's ``[fcgi-program:x]`` (examples/supervisord.conf) every process
gets the same socket as fd 0, so several processes serve one port and the
kernel hands each connection to one of them: one web process per core::

    [server:supervisord]
    use = main
    listen =
    listen_fd = 0
"""

import copy
import json
import logging
import socket

from pyramid.interfaces import IRoutesMapper
from waitress import serve
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import BaseWSGIServer
from waitress.server import create_server as waitress_server
from waitress.utilities import RequestEntityTooLarge

from .bodylimits import RouteLimits

log = logging.getLogger(__name__)

# Room above a route's limit, so that the app, not the server, answers a body
# just over it (chunk framing counts against the server's limit).
HEADROOM = 64 * 1024


class BodyTooLarge(RequestEntityTooLarge):
    """waitress' 413, in the API's envelope."""

    def to_response(self, ident=None):
        message = "The request body is too large."
        body = json.dumps({"status": False, "message": message, "errors": self.body})
        return ("413 Request Entity Too Large",
                [("Content-Type", "application/json")], body.encode())


def parser_class(limit_for):
    class Parser(HTTPRequestParser):
        limit = None

        def parse_header(self, header_plus):
            super().parse_header(header_plus)
            try:
                self.limit = limit_for(self.path, "AUTHORIZATION" in self.headers)
            except Exception:  # never worse than plain waitress
                log.exception("no body limit for %r", self.path)
                return
            if self.limit + HEADROOM < self.adj.max_request_body_size:
                self.adj = copy.copy(self.adj)
                self.adj.max_request_body_size = self.limit + HEADROOM
            if self.content_length >= self.adj.max_request_body_size:
                # No "100 Continue" for a body that will be refused: the
                # client need not send it at all.
                self.expect_continue = False

        def received(self, data):
            consumed = super().received(data)
            if type(self.error) is RequestEntityTooLarge and self.limit is not None:
                self.error = BodyTooLarge(
                    f"The request body may be at most {self.limit} bytes.")
            return consumed

    return Parser


def create_server(app, registry=None, **kw):
    """waitress' ``create_server``, with route limits when ``app`` is a Pyramid app."""
    registry = registry or getattr(app, "registry", None)
    sockets = {}
    server = waitress_server(app, map=sockets, **kw)
    if registry is None or registry.queryUtility(IRoutesMapper) is None:
        log.warning("not a Pyramid app: bodies are limited by max_request_body_size only")
        return server
    channel = type("Channel", (HTTPChannel,),
                   {"parser_class": parser_class(RouteLimits(registry))})
    for dispatcher in [server, *sockets.values()]:
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = channel
    return server


def serve_paste(global_conf, **kw):
    """The PasteDeploy server factory (``use = call:vexpenses_core.server:serve_paste``).

    ``call:`` objects are factories: this returns what ``pserve`` runs the app with.
    Options waitress refuses, an address already in use, and a ``listen_fd``
    that is not a listening socket stop ``pserve`` here with one line: pserve
    gets the server before it builds the app, and exits on a ``SystemExit``
    without a traceback (one raised while serving would exit with status 0).
    """
    fd = kw.pop("listen_fd", "")
    section = "[server:main]"
    where = kw.get("listen") or f"{kw.get('host', '0.0.0.0')}:{kw.get('port', 8080)}"
    try:
        if fd:
            section, where = "[server:...]", f"the socket of file descriptor {fd}"
            kw = _inherited(fd, kw)
            Adjustments(**kw)  # the options alone: closing a test server would close the socket
        else:  # bind once, with the real options, and let go
            waitress_server(_no_app, map={}, **kw).close()
    except (ValueError, OSError) as exc:
        raise SystemExit(
            f"vexpenses: configuration error: {section} cannot serve on {where}: "
            f"{str(exc).rstrip('.')}. "
            f"Check its options (those of egg:waitress#main, and listen_fd); for an address "
            f"in use, stop the other server or change listen"
        ) from None

    def run(app):
        serve(app, _server=create_server, **kw)
        return 0

    return run


def _inherited(fd, kw):
    """``kw`` to serve on the listening socket open as file descriptor ``fd``."""
    # Empty where a section that `use`s [server:main] blanks what it would inherit.
    if [name for name in ("listen", "host", "port", "unix_socket") if kw.pop(name, "")]:
        raise ValueError("listen_fd takes the place of listen, host, port and unix_socket: "
                         "leave them empty (listen =) where listen_fd is set")
    try:
        number = int(fd)
    except ValueError:
        raise ValueError(f"listen_fd must be a file descriptor's number, not {fd!r}") from None
    sock = socket.socket(fileno=number)  # OSError when it is not a socket
    if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        sock.detach()
        raise ValueError(f"file descriptor {number} is not a listening socket (run it under "
                         "supervisord's [fcgi-program:...] with socket = tcp://...)")
    return dict(kw, sockets=[sock])


def _no_app(environ, start_response):  # pragma: no cover - never called
    return []
