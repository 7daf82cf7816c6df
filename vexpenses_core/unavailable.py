"""Redis out of reach: a 503 that says to come back soon, not a 500.

While Sentinel switches masters (or Redis restarts), a request that needs
Redis fails after at most ``vexpenses.redis_timeout`` and a short retry.
That is the service being briefly unavailable, not a bug: the client is
told to try again, and the log gets one warning line, not a traceback.
"""

import logging

import redis

from .api import _error_response, is_api_request, server_error_view
from .redis_client import NotReplicated

log = logging.getLogger(__name__)

# MasterNotFoundError (no sentinel names a master yet) is a ConnectionError;
# NotReplicated (a write no replica confirmed in time) a RedisError.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, NotReplicated)

MESSAGE = "The service is temporarily unavailable."
RETRY_AFTER_SECONDS = 2  # about what a Sentinel failover takes


def redis_unavailable_view(exc, request):
    # The text names the server, never the URL's password; MasterNotFoundError's
    # goes on with a description of every sentinel's client, cut here.
    log.warning("Redis unavailable on %s %s: %s: %s", request.method, request.path,
                type(exc).__name__, str(exc).partition(" : ")[0][:200])
    headers = {"Retry-After": RETRY_AFTER_SECONDS}
    if is_api_request(request):
        return _error_response(request, 503, MESSAGE, MESSAGE, headers)
    response = request.response
    response.status_int = 503
    response.content_type = "text/plain"
    response.text = MESSAGE
    response.headers.update({name: str(value) for name, value in headers.items()})
    return response


def task_send_error_view(exc, request):
    """taskiq wraps a failed send; unwrapped, Redis out of reach is a 503 as above."""
    cause = exc.__cause__
    if isinstance(cause, UNAVAILABLE):
        return redis_unavailable_view(cause, request)
    return server_error_view(exc, request)


def includeme(config):
    from taskiq.exceptions import SendTaskError

    for error in UNAVAILABLE:
        config.add_exception_view(redis_unavailable_view, context=error)
    config.add_exception_view(task_send_error_view, context=SendTaskError)
