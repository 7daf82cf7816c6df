"""One Redis client per process for the core and plugins.

With ``vexpenses.redis_url`` set, a real client; without it (the embedded
default) an in-memory server that speaks the same API, shared by the web
threads and the in-process jobs of this one process.
"""

import dataclasses
from urllib.parse import parse_qs, unquote, urlsplit

import fakeredis
import redis

SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_EXAMPLE = "redis+sentinel://:PASSWORD@HOST1:26379,HOST2:26379/MASTER_NAME/0"
SETTING = "vexpenses.redis_url (VEXPENSES_REDIS_URL)"


@dataclasses.dataclass(frozen=True)
class SentinelTarget:
    """Where ``redis+sentinel://`` points: the sentinels to ask, and which master."""

    sentinels: tuple  # ((host, port), ...)
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None  # the master's and replicas'
    sentinel_password: str | None = None  # the sentinels' own, when they have one


def parse_redis_url(url):
    """Return ``url`` itself for a plain Redis URL, or a :class:`SentinelTarget`.

    ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]``
    with an optional ``?sentinel_password=...``. Raises ConfigurationError,
    without repeating the URL (it may hold a password).
    """
    from .settings import ConfigurationError

    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return url
    if scheme != SENTINEL_SCHEME:
        raise ConfigurationError(
            f"{SETTING} must start with redis://, rediss://, unix:// or {SENTINEL_SCHEME}://, "
            f"e.g. redis://127.0.0.1:6379/0 or {SENTINEL_EXAMPLE}")
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        name = name.strip("[]")  # an IPv6 address in brackets
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"{SETTING} must list its sentinels as HOST:PORT, separated by commas, "
                f"e.g. {SENTINEL_EXAMPLE}")
        sentinels.append((name, int(port)))
    path = [unquote(part) for part in parts.path.split("/") if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            f"{SETTING} must end with the master's name that the sentinels monitor, and "
            f"optionally a database number: e.g. {SENTINEL_EXAMPLE}")
    options = parse_qs(parts.query)
    unknown = sorted(set(options) - {"sentinel_password"})
    if unknown:
        raise ConfigurationError(
            f"{SETTING} takes only the option sentinel_password, not {', '.join(unknown)}")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=options.get("sentinel_password", [None])[0],
    )


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
