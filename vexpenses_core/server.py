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
"""

import copy
import json
import logging

from pyramid.interfaces import IRoutesMapper
from waitress import serve
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
    Options waitress refuses, and an address already in use, stop ``pserve``
    here with one line: pserve gets the server before it builds the app, and
    exits on a ``SystemExit`` without a traceback (one raised while serving
    would exit with status 0).
    """
    try:  # bind once, with the real options, and let go
        waitress_server(_no_app, map={}, **kw).close()
    except (ValueError, OSError) as exc:
        where = kw.get("listen") or f"{kw.get('host', '0.0.0.0')}:{kw.get('port', 8080)}"
        raise SystemExit(
            f"vexpenses: configuration error: [server:main] cannot serve on {where}: "
            f"{str(exc).rstrip('.')}. "
            f"Check its options (those of egg:waitress#main); for an address in use, stop "
            f"the other server or change listen"
        ) from None

    def run(app):
        serve(app, _server=create_server, **kw)
        return 0

    return run


def _no_app(environ, start_response):  # pragma: no cover - never called
    return []
