"""Abuse limits on login and forgot-password, answered with 429 and Retry-After.

Request windows are counted by the ``limits`` library (moving windows), in
Redis when configured and in memory on the embedded default. Repeated login
failures on one account also add an escalating delay: the first
``vexpenses.ratelimit.login_free_failures`` failures are free; each failure
after them makes the next attempt wait twice as long as the one before (1 s,
2 s, 4 s, ... capped at 15 minutes) until a login or a password reset
succeeds.

Every key is hashed before it reaches the store: callers pass the
canonical address, a user id or a client address, and whatever its length
or bytes, the store sees 32 hex digits.
"""

import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from zope.interface import implementer

from ..api import APIError
from ..redis_client import SentinelTarget, parse_redis_url, retry_policy, sentinel_options
from .digests import sha256
from .interfaces import IRateLimiter

MAX_DELAY_SECONDS = 15 * 60


def hashed(key):
    return sha256(str(key))[:32]


class RateLimited(APIError):
    status = 429

    def __init__(self, retry_after):
        retry_after = max(int(math.ceil(retry_after)), 1)
        super().__init__(
            "Too many attempts.",
            f"Too many attempts. Please try again in {retry_after} "
            f"second{'s' if retry_after != 1 else ''}.",
            headers={"Retry-After": retry_after},
        )


def limits_storage(settings):
    """The ``limits`` store: Redis when configured, else this process's memory."""
    url = settings["vexpenses.redis_url"]
    if not url:
        return storage_from_string("memory://")
    prefix = settings["vexpenses.redis_prefix"] + "limits"
    timeout = settings["vexpenses.redis_timeout"]
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
               "retry": retry_policy()}
    target = parse_redis_url(url)
    if not isinstance(target, SentinelTarget):
        return storage_from_string(url, key_prefix=prefix, **options)
    # ``limits`` reads only the sentinels and the master's name from its URL;
    # the database and passwords go as options, and counts are always read
    # from the master (a replica may lag behind the hits just counted).
    hosts = ",".join(f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
                     for host, port in target.sentinels)
    return storage_from_string(
        f"redis+sentinel://{hosts}/{target.master}", key_prefix=prefix,
        use_replicas=False, sentinel_kwargs=sentinel_options(target, timeout),
        db=target.db, username=target.username, password=target.password, **options)


@implementer(IRateLimiter)
class RateLimiter:
    def __init__(self, settings, redis):
        self.limiter = MovingWindowRateLimiter(limits_storage(settings))
        self.redis = redis
        self.enabled = settings["vexpenses.ratelimit.enabled"]
        self.limits = {
            name: parse(settings[f"vexpenses.ratelimit.{name}"])
            for name in ("login_ip", "login_account", "forgot_ip", "forgot_email", "register_ip",
                         "export", "verify_resend", "email_change")
        }
        self.free_failures = settings["vexpenses.ratelimit.login_free_failures"]
        self.prefix = settings["vexpenses.redis_prefix"]

    def hit(self, name, key):
        """Count one attempt; raise :class:`RateLimited` when over the limit."""
        if not self.enabled:
            return
        item = self.limits[name]
        key = hashed(key)
        if not self.limiter.hit(item, name, key):
            reset_at = self.limiter.get_window_stats(item, name, key).reset_time
            raise RateLimited(reset_at - time.time())

    # -- escalating delay after login failures -------------------------------

    def _failure_key(self, account):
        return f"{self.prefix}login-failures:{hashed(account)}"

    def check_login_delay(self, account):
        if not self.enabled:
            return
        data = self.redis.hgetall(self._failure_key(account))
        if not data:
            return
        failures = int(data.get(b"count", 0))
        wait = self.delay_for(failures) - (time.time() - float(data.get(b"last", 0)))
        if wait > 0:
            raise RateLimited(wait)

    def delay_for(self, failures):
        over = failures - self.free_failures
        return 0 if over <= 0 else min(2 ** (over - 1), MAX_DELAY_SECONDS)

    def login_failed(self, account):
        key = self._failure_key(account)
        pipe = self.redis.pipeline()
        pipe.hincrby(key, "count", 1)
        pipe.hset(key, "last", time.time())
        pipe.expire(key, MAX_DELAY_SECONDS * 2)
        pipe.execute()

    def login_succeeded(self, account):
        self.redis.delete(self._failure_key(account))
