"""Redis out of reach: a 503 that says to come back soon, not a 500.

While Sentinel switches masters (or Redis restarts), a request that needs
Redis fails after at most ``vexpenses.redis_timeout`` and a short retry.
That is the service being briefly unavailable, not a bug: the client is
told to try again, and the log gets one warning line, not a traceback.
"""

import logging

import redis

from .api import _error_response, is_api_request

log = logging.getLogger(__name__)

MESSAGE = "The service is temporarily unavailable."
RETRY_AFTER_SECONDS = 2  # about what a Sentinel failover takes


def redis_unavailable_view(exc, request):
    # The exception's text names the server, never the URL's password.
    log.warning("Redis unavailable on %s %s: %s: %s", request.method, request.path,
                type(exc).__name__, exc)
    headers = {"Retry-After": RETRY_AFTER_SECONDS}
    if is_api_request(request):
        return _error_response(request, 503, MESSAGE, MESSAGE, headers)
    response = request.response
    response.status_int = 503
    response.content_type = "text/plain"
    response.text = MESSAGE
    response.headers.update({name: str(value) for name, value in headers.items()})
    return response


def includeme(config):
    # MasterNotFoundError (no sentinel names a master yet) is a ConnectionError.
    for error in (redis.ConnectionError, redis.TimeoutError):
        config.add_exception_view(redis_unavailable_view, context=error)
