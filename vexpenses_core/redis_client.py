"""One Redis client per process for the core and plugins.

With ``vexpenses.redis_url`` set, a real client; without it (the embedded
default) an in-memory server that speaks the same API, shared by the web
threads and the in-process jobs of this one process.
"""

import fakeredis
import redis


def make_redis(settings):
    url = settings["vexpenses.redis_url"]
    if url:
        return redis.Redis.from_url(url, health_check_interval=30)
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def redis_key(registry, *parts):
    """A key under this app's prefix (``vexpenses.redis_prefix``), e.g. ``vexpenses:users:count``.

    Every key the core and plugins write goes through this, so that several
    apps (or test runs) can share one Redis.
    """
    return registry.settings["vexpenses.redis_prefix"] + ":".join(str(part) for part in parts)


def includeme(config):
    """Create ``registry.redis``, ``request.redis`` and ``request.redis_key(*parts)``."""
    registry = config.registry
    if getattr(registry, "redis", None) is None:
        registry.redis = make_redis(registry.settings)
    config.add_request_method(lambda request: request.registry.redis, "redis", reify=True)
    config.add_request_method(
        lambda request, *parts: redis_key(request.registry, *parts), "redis_key"
    )
