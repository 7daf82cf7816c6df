"""The largest body each path takes, known before the body is read.

``body_limit`` (vexpenses_core.api) refuses a body over its view's limit,
but only once the view is found, and two things read a body before that:
the server (waitress buffers it whole) and pyramid_retry (it copies it, so
that a retried request can read it again). Both ask here first, by path.
"""

import functools
import io

from pyramid.interfaces import IRoutesMapper

MAX_CACHED_PATH = 256


class RouteLimits:
    """``limits(path, authorized)``: the largest body any route matching ``path`` takes.

    ``authorized`` says whether the request carries an ``Authorization``
    header; without one, a route whose views need a permission takes no
    more than ``vexpenses.max_body_bytes``.
    """

    def __init__(self, registry):
        self.mapper = registry.queryUtility(IRoutesMapper)
        self.limits = getattr(registry, "vexpenses_body_limits", {})
        self.default = registry.settings["vexpenses.max_body_bytes"]
        self._cached = functools.lru_cache(maxsize=1024)(self._lookup)

    def __call__(self, path, authorized):
        # Asked for every request, GET /me included: a path seen before is not
        # matched against every route again. Long paths (an attacker's) are
        # matched but not kept, so the cache stays small.
        if len(path) > MAX_CACHED_PATH:
            return self._lookup(path, authorized)
        return self._cached(path, authorized)

    def _lookup(self, path, authorized):
        which = 0 if authorized else 1
        found = [self.limits.get(route.name, (self.default, self.default))[which]
                 for route in self.mapper.get_routes() if route.match(path) is not None]
        return max(found, default=self.default)


def _no_body(request):
    """What pyramid_retry's copy of the body leaves, without reading one: a
    request with neither Content-Length nor chunked encoding has no body
    (RFC 9112, 6.3). Most requests are such GETs; this saves each one a copy."""
    environ = request.environ
    environ["wsgi.input"] = io.BytesIO()
    environ["CONTENT_LENGTH"] = "0"
    environ["webob.is_body_seekable"] = True


def retry_attempts(request):
    """pyramid_retry's ``activate_hook``: one attempt, so no copy, for some bodies.

    - A body over its path's limit then gets a 413 without being read.
    - A chunked body without a length is read by ``body_limit`` only up to
      the limit, where the copy would read all of it.
    - A body over ``vexpenses.max_body_bytes`` (an upload) is read only by
      its view, after the token is checked, and is not written to disk a
      second time. Such a request is not retried after a deadlock.

    ``None`` keeps the configured attempts.
    """
    length = request.content_length
    if length is None:
        if "chunked" in request.environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return 1
        _no_body(request)
        return None
    limits = getattr(request.registry, "vexpenses_route_limits", None)
    if limits is None:
        limits = request.registry.vexpenses_route_limits = RouteLimits(request.registry)
    if length > min(limits.default,
                    limits(request.path_info, "Authorization" in request.headers)):
        return 1
    return None
