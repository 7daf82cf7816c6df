"""HTTP basics for every API route: the envelope, errors, request ids, body limits.

Success: ``{"status": true, "message": ..., "data": ...}``.
Failure: ``{"status": false, "message": ..., "errors": ...}``.
Every error on an ``/api/`` path is JSON in that envelope, never HTML.
"""

import datetime
import json
import logging
import math
import random
import re
from email.message import Message
from urllib.parse import parse_qsl

from pyramid.httpexceptions import HTTPException
from pyramid.renderers import JSON
from pyramid.tweens import EXCVIEW
from pyramid_retry import is_error_retryable

from .logging import install_record_factory, request_id_var

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# Laravel's wording, which existing clients show to people.
STATUS_MESSAGES = {
    400: "Bad request.",
    401: "Unauthenticated.",
    403: "This action is unauthorized.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "The request body is too large.",
    415: "Unsupported media type.",
    422: "The given data was invalid.",
    429: "Too many attempts.",
    500: "Server error.",
}


class APIError(Exception):
    """An error answered in the envelope. Raise it from views and services."""

    status = 400

    def __init__(self, message=None, errors=None, status=None, headers=None):
        if status is not None:
            self.status = status
        self.message = message or STATUS_MESSAGES.get(self.status, "Error.")
        self.errors = errors if errors is not None else self.message
        self.headers = headers or {}
        super().__init__(self.message)


class ValidationError(APIError):
    """422: ``errors`` maps each field to a list of messages."""

    status = 422

    def __init__(self, errors, message=None):
        super().__init__(message or STATUS_MESSAGES[422], errors)


class NotFound(APIError):
    status = 404


class RequestTooLarge(APIError):
    status = 413


def success(request, message, data=None, status=200):
    """Return the success envelope, setting the response status."""
    request.response.status_int = status
    return {"status": True, "message": message, "data": data}


def failure_body(message, errors):
    return {"status": False, "message": message, "errors": errors}


def failure(request, status, message, errors=None):
    """Return the failure envelope *without raising*: the transaction still commits.

    For the rare error whose side effects must stay, such as revoking a
    session when a stolen refresh token comes back.
    """
    request.response.status_int = status
    if status == 401:
        request.response.headers["WWW-Authenticate"] = "Bearer"
    return failure_body(message, errors if errors is not None else message)


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
# No field of ours nests; a little room for clients that send extra objects.
MAX_JSON_DEPTH = 32


def json_body(request):
    """The request's JSON object, or a 422 when the body is not one.

    An empty body counts as ``{}`` so that validation can name the missing
    fields; form-encoded bodies are accepted too, as Laravel clients send them.
    """
    if request.content_type in FORM_TYPES:
        return {key: value for key, value in form_fields(request).items()
                if isinstance(value, str)}
    raw = request.body
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant, parse_float=_finite_float)
        # "\ud800" is valid JSON but not text: nothing downstream could encode it.
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ValidationError({"body": ["The request body is not valid JSON."]}) from None
    if not isinstance(data, dict):
        raise ValidationError({"body": ["The request body must be a JSON object."]})
    if _depth(data) > MAX_JSON_DEPTH:
        raise ValidationError({"body": [
            f"The request body may nest at most {MAX_JSON_DEPTH} levels deep."]})
    return data


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity


def _finite_float(text):
    number = float(text)
    if number in (math.inf, -math.inf):  # 1e999 overflows to infinity
        raise ValueError("number out of range")
    return number


def _depth(data):
    """How deeply ``data`` nests, without recursion (json.loads allows ~1,000 levels)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
    return deepest


def _ends(request, size=4096):
    """The body's first and last bytes, leaving it to be read again.

    Not ``request.body``: an upload stays in webob's temporary file.
    """
    request.make_body_seekable()
    body = request.body_file_raw
    head = body.read(size)
    body.seek(max((request.content_length or 0) - size, 0))
    tail = body.read(size)
    body.seek(0)
    return head, tail


def form_fields(request):
    """``request.POST``, or a 422 when the body is not the form its Content-Type claims.

    webob raises assorted errors on a multipart body without its boundary,
    and on a charset other than UTF-8; JSON labelled as multipart parses
    into nothing and would be answered "field required", which misleads.
    """
    kind = request.content_type
    problem = f"The request body is not valid {kind}."
    header = Message()
    header["Content-Type"] = request.headers.get("Content-Type", "")
    charset = header.get_content_charset()
    if charset and charset not in ("utf-8", "utf8"):
        raise ValidationError({"body": [f"The request body of {kind} must be UTF-8."]})
    if kind == "multipart/form-data":
        boundary = header.get_param("boundary")
        delimiter = f"--{boundary}".encode("latin-1", "replace")
        head, tail = _ends(request)
        if not isinstance(boundary, str) or not boundary or delimiter not in head or \
                delimiter + b"--" not in tail:
            raise ValidationError({"body": [problem + " Its boundary is missing or wrong."]})
    if kind == "application/x-www-form-urlencoded":
        try:  # webob would quietly drop or mangle what is not UTF-8
            parse_qsl(request.body.decode("ascii"), encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise ValidationError({"body": [problem + " It must be UTF-8."]}) from None
    try:
        return request.POST
    except Exception:  # noqa: BLE001  the parser's errors are not a stable API
        raise ValidationError({"body": [problem]}) from None


def is_api_request(request):
    # The WSGI string, not request.path_info: the prefix is ASCII, so there
    # is no need to decode the whole path to look at it.
    return request.environ.get("PATH_INFO", "").startswith(API_PREFIX)


def _error_response(request, status, message, errors, headers=None):
    response = request.response
    response.status_int = status
    response.content_type = "application/json"
    response.charset = "utf-8"
    response.text = json.dumps(failure_body(message, errors))
    for name, value in (headers or {}).items():
        response.headers[name] = str(value)
    return response


def api_error_view(exc, request):
    headers = dict(exc.headers)
    if exc.status == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return _error_response(request, exc.status, exc.message, exc.errors, headers)


def http_exception_view(exc, request):
    """Pyramid's own HTTP errors (404, 403, 405...), in the envelope on API paths."""
    if not is_api_request(request):
        return exc
    status = exc.status_int
    if status == 404 and request.matched_route is not None and _method_mismatch(request):
        allowed = _allowed_methods(request)
        return _error_response(
            request, 405, STATUS_MESSAGES[405], STATUS_MESSAGES[405],
            {"Allow": ", ".join(allowed)} if allowed else None,
        )
    if status == 403 and request.authenticated_userid is None:
        status = 401
    message = STATUS_MESSAGES.get(status) or exc.title
    headers = {"Retry-After": exc.headers["Retry-After"]} if "Retry-After" in exc.headers else {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return _error_response(request, status, message, message, headers)


def _method_mismatch(request):
    from pyramid.exceptions import PredicateMismatch

    return isinstance(request.exception, PredicateMismatch)


def _allowed_methods(request):
    name = request.matched_route.name
    methods = set()
    for item in request.registry.introspector.get_category("views") or []:
        view = item["introspectable"]
        if view["route_name"] == name:
            found = view["request_methods"]
            if found:
                methods.update([found] if isinstance(found, str) else found)
    return sorted(methods)


def bad_encoding_view(exc, request):
    """A query string or form that is not UTF-8 is the client's mistake: 422, not 500."""
    if not is_api_request(request):
        response = request.response
        response.status_int = 400
        response.content_type = "text/plain"
        response.text = "Bad request: not UTF-8."
        return response
    return _error_response(request, 422, STATUS_MESSAGES[422],
                           {"query": ["The query string is not valid UTF-8."]})


def server_error_view(exc, request):
    """Anything unexpected: a generic 500, with the details only in the log."""
    if is_error_retryable(request, exc):
        # pyramid_retry discards this response and runs the request again.
        log.warning("retrying %s %s after %r", request.method, request.path, exc)
    else:
        log.error("unhandled error on %s %s", request.method, request.path, exc_info=exc)
    if is_api_request(request):
        return _error_response(request, 500, STATUS_MESSAGES[500], STATUS_MESSAGES[500])
    response = request.response
    response.status_int = 500
    response.content_type = "text/plain"
    response.text = "Server error."
    return response


def new_request_id():
    """32 random hex digits, unique enough to find a request by.

    Not ``uuid.uuid4()``: its ``os.urandom`` is a system call that lets go of
    the GIL, and on a busy server every such release hands the interpreter
    to another thread. An id is no secret, so ``random`` will do (reseeded
    in a forked child, so worker processes don't repeat each other).
    """
    return f"{random.getrandbits(128):032x}"


def request_id_tween_factory(handler, registry):
    """Accept a sane ``X-Request-ID`` or make one; echo it and log with it.

    Also what every answer needs (no-store) and every request's cleanup: here
    rather than in NewRequest and NewResponse subscribers, because with no
    subscriber at all Pyramid skips its five events per request.
    """

    def tween(request):
        environ = request.environ
        request_id = environ.get("vexpenses.request_id")
        if request_id is None:
            given = environ.get("HTTP_X_REQUEST_ID", "")
            request_id = given if _REQUEST_ID_RE.match(given) else new_request_id()
            environ["vexpenses.request_id"] = request_id
        if environ.get("retry.attempts", 1) != 1:
            request.add_finished_callback(_close_spooled_body)
        token = request_id_var.set(request_id)
        try:
            response = handler(request)
        finally:
            request_id_var.reset(token)
        _answer_headers(request, response, request_id)
        return response

    return tween


def body_limit(view, info):
    """Refuse bodies above the limit with a 413 before the view reads them.

    A view may raise the limit for itself with ``max_body_bytes=...``.
    """
    if info.exception_only:
        return view
    default = info.registry.settings["vexpenses.max_body_bytes"]
    limit = info.options.get("max_body_bytes") or default
    _record_limit(info.registry, info.options, limit, default)

    def wrapper(context, request):
        length = request.content_length
        if length is not None and length > limit:
            raise RequestTooLarge(f"The request body may be at most {limit} bytes.")
        if length is None and request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = request.body_file_raw.read(limit + 1)
            if len(data) > limit:
                raise RequestTooLarge(f"The request body may be at most {limit} bytes.")
            request.body = data
        return view(context, request)

    return wrapper


body_limit.options = ("max_body_bytes",)


def _record_limit(registry, options, limit, default):
    """Note the largest body each route takes, for vexpenses_core.server.

    As ``(with a token, without one)``: a request with no token can't pass a
    view that needs a permission, so for it such a view takes no more than
    the default.
    """
    route = options.get("route_name")
    if route is None:
        return
    anonymous = limit if options.get("permission") is None else min(limit, default)
    limits = registry.__dict__.setdefault("vexpenses_body_limits", {})
    known = limits.get(route, (0, 0))
    limits[route] = (max(known[0], limit), max(known[1], anonymous))


def _close_spooled_body(request):
    # pyramid_retry copies a large body to a temporary file so that a retry
    # can read it again; once no retry will come, nothing else closes it.
    # With one attempt (vexpenses_core.bodylimits) it made no copy.
    if request.exception is None or not is_error_retryable(request, request.exception):
        body = request.environ.get("wsgi.input")
        if body is not None and hasattr(body, "close"):
            body.close()


def _answer_headers(request, response, request_id):
    """``X-Request-ID`` on every answer, and ``Cache-Control: no-store`` on the API's.

    No cache, shared or the browser's, keeps an API answer: all of them, not a
    list of routes, since tokens and account data are in most, errors may echo
    what was sent, and a plugin's new route is covered without remembering
    to. A response that chose its own policy (the docs' static assets) keeps
    it. Appended to the header list: ``response.headers[...]`` makes a view
    and scans the list for each header.
    """
    headerlist = response.headerlist
    names = {name.lower() for name, _ in headerlist}
    if "x-request-id" in names:
        response.headers[REQUEST_ID_HEADER] = request_id
    else:
        headerlist.append((REQUEST_ID_HEADER, request_id))
    if "cache-control" not in names and is_api_request(request):
        headerlist.append(("Cache-Control", "no-store"))


def isoformat(value):
    """Laravel's timestamp format: ``2024-01-31T12:00:00.000000Z``, in UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"  # C's fast path, not strftime


def _json_content_type(response):
    """``application/json`` unless the view chose a type, as Pyramid's renderer
    does it, on the header list: webob's content_type property parses the
    header on reading and rebuilds it, charset and all, on writing."""
    headerlist = response.headerlist
    for index, (name, value) in enumerate(headerlist):
        if name.lower() == "content-type":
            if value.split(";", 1)[0].strip() == response.default_content_type:
                headerlist[index] = ("Content-Type", "application/json")
            return
    headerlist.append(("Content-Type", "application/json"))


class EnvelopeJSON(JSON):
    """Pyramid's JSON renderer, with dates and times formatted at once.

    Its own ``default`` looks up an adapter in the registry for every value
    json can't encode: three lookups for each ``GET /me``. The adapters stay
    registered, for anything else (a ``datetime`` subclass included).
    """

    def __call__(self, info):
        serializer, options = self.serializer, self.kw

        def render(value, system):
            request = system.get("request")
            if request is not None:
                _json_content_type(request.response)
            # Bytes rather than text: Pyramid then sets them as the body with
            # no charset lookups. The same bytes (json's output is ASCII).
            return serializer(value, default=self._make_default(request), **options).encode()

        return render

    def _make_default(self, request):
        fallback = super()._make_default(request)

        def default(value):
            kind = type(value)
            if kind is datetime.datetime:
                return isoformat(value)
            if kind is datetime.date:
                return value.isoformat()
            return fallback(value)

        return default


def _request_id(request):
    return request.environ.get("vexpenses.request_id")


def includeme(config):
    install_record_factory()
    renderer = EnvelopeJSON()
    renderer.add_adapter(datetime.datetime, lambda value, request: isoformat(value))
    renderer.add_adapter(datetime.date, lambda value, request: value.isoformat())
    config.add_renderer("json", renderer)
    config.add_request_method(_request_id, "request_id", reify=True)
    config.add_tween("vexpenses_core.api.request_id_tween_factory", over=EXCVIEW)
    config.add_view_deriver(body_limit)
    config.add_exception_view(api_error_view, context=APIError)
    config.add_exception_view(http_exception_view, context=HTTPException)
    config.add_exception_view(bad_encoding_view, context=UnicodeDecodeError)
    config.add_exception_view(server_error_view, context=Exception)
