"""One Redis client per process for the core and plugins.

With ``vexpenses.redis_url`` set, a real client; without it (the embedded
default) an in-memory server that speaks the same API, shared by the web
threads and the in-process jobs of this one process.
"""

import time

import fakeredis
import redis
import redis.sentinel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

# Parsed with the other settings; imported here too, where the clients are made.
from .settings import SentinelTarget, parse_redis_url  # noqa: F401

# A failed connection is tried again this often, after 50 ms then 100 ms: enough
# to ride out a dropped connection, or a master being switched over while the
# sentinels already name the new one. A timeout is not retried: a request
# waits at most vexpenses.redis_timeout on a server that does not answer.
RETRIES = 2


def retry_policy(retry_class=Retry):
    return retry_class(ExponentialBackoff(cap=0.2, base=0.05), RETRIES,
                       supported_errors=(redis.ConnectionError,))


def connect(url, timeout, **options):
    """A synchronous client for ``url``, plain or ``redis+sentinel://``.

    Connecting and every answer wait at most ``timeout`` seconds. Through
    Sentinel, each new connection asks the sentinels which server is the
    master, so a client follows a failover by itself.
    """
    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
               "retry": retry_policy(), **options}
    target = parse_redis_url(url)
    if not isinstance(target, SentinelTarget):
        return redis.Redis.from_url(url, **options)
    sentinel = redis.sentinel.Sentinel(
        target.sentinels, sentinel_kwargs=sentinel_options(target, timeout))
    return sentinel.master_for(target.master, db=target.db, username=target.username,
                               password=target.password, **options)


def sentinel_options(target, timeout):
    """How to talk to the sentinels themselves: their own password, the same timeouts."""
    return {"password": target.sentinel_password, "socket_connect_timeout": timeout,
            "socket_timeout": timeout}


def async_pool(url, timeout, **options):
    """A ``redis.asyncio`` connection pool for ``url``, plain or ``redis+sentinel://``."""
    from redis.asyncio import BlockingConnectionPool
    from redis.asyncio.retry import Retry as AsyncRetry
    from redis.asyncio.sentinel import Sentinel as AsyncSentinel
    from redis.asyncio.sentinel import SentinelConnectionPool

    options = {"socket_connect_timeout": timeout, "socket_timeout": timeout,
               "retry": retry_policy(AsyncRetry), **options}
    target = parse_redis_url(url)
    if not isinstance(target, SentinelTarget):
        return BlockingConnectionPool.from_url(url, **options)
    sentinel = AsyncSentinel(target.sentinels,
                             sentinel_kwargs=sentinel_options(target, timeout))
    return SentinelConnectionPool(target.master, sentinel, db=target.db,
                                  username=target.username, password=target.password,
                                  **options)


def make_redis(settings):
    url = settings["vexpenses.redis_url"]
    if url:
        return connect(url, settings["vexpenses.redis_timeout"], health_check_interval=30)
    return fakeredis.FakeRedis(server=fakeredis.FakeServer())


def replicated_through(client):
    """Whether ``client`` goes through Sentinel, so that writes that must survive a
    failover wait for a replica (:func:`write_replicated`)."""
    return isinstance(getattr(client, "connection_pool", None),
                      (redis.sentinel.SentinelConnectionPool,))


def replica_wait_ms(timeout):
    """How long to WAIT for a replica: at most a second, and well under the socket
    ``timeout``, so that WAIT itself never times the connection out."""
    return int(min(1.0, (timeout or 5) / 2) * 1000)


class ReplicaWait:
    """Judges each WAIT of one client: was the write replicated, or may it be lost?

    A write no replica confirmed raises :class:`NotReplicated`, and the caller
    keeps its own copy (an outbox row, a batch of audit records) to try again.
    One case is let through: a master that has had no replica connected for
    ``GRACE_SECONDS`` (the other server died) has nothing to wait for, and
    refusing every write would turn one lost server into an outage. It is then
    asked again only every ``RECHECK_SECONDS``, not made to wait on each write.
    A replica that merely dropped its link (it reconnects within a second or
    two) does not count as gone: writes meanwhile still raise.
    """

    GRACE_SECONDS = 5
    RECHECK_SECONDS = 5

    def __init__(self):
        self.alone_since = None  # when the master was first seen without replicas
        self.skip_until = 0

    def needed(self):
        return time.monotonic() >= self.skip_until

    def suspect(self):
        """Whether the master was last seen without replicas: then the caller first
        asks (:meth:`probe`) rather than write what may have to be sent again."""
        return self.alone_since is not None and self.needed()

    def probe(self, info):
        """Raise, before any write, while the master has had no replica for less
        than the grace period; forget the suspicion once one is back."""
        if info.get("connected_slaves", 0):
            self.alone_since = None
            return
        self._alone()

    def _alone(self):
        now = time.monotonic()
        if self.alone_since is None:
            self.alone_since = now
        if now - self.alone_since < self.GRACE_SECONDS:
            raise NotReplicated("the master has no replica connected just now")
        self.skip_until = now + self.RECHECK_SECONDS

    def judge(self, acked, info, wait_ms):
        if acked >= 1:
            self.alone_since = None
            return
        if info.get("connected_slaves", 0):
            raise NotReplicated(f"no replica confirmed the write within {wait_ms} ms")
        self._alone()


def write_replicated(client, write):
    """Run ``write(pipe)`` (commands on a non-transactional pipeline), then WAIT
    until one replica has it, on the same connection.

    Redis replicates asynchronously: a master killed right after answering
    may take its last writes with it, and the replica promoted in its place
    never had them. Only through Sentinel (a replica is expected); returns the
    pipeline's results without WAIT's; raises :class:`NotReplicated` as
    :class:`ReplicaWait` decides.
    """
    pipe = client.pipeline(transaction=False)
    write(pipe)
    if not replicated_through(client):
        return pipe.execute()
    judge = client.__dict__.setdefault("_vexpenses_replica_wait", ReplicaWait())
    if judge.suspect():
        judge.probe(client.info("replication"))
    if not judge.needed():
        return pipe.execute()
    wait_ms = replica_wait_ms(client.connection_pool.connection_kwargs.get("socket_timeout"))
    pipe.execute_command("WAIT", 1, wait_ms)
    pipe.info("replication")
    *results, acked, info = pipe.execute()
    judge.judge(acked, info, wait_ms)
    return results


class NotReplicated(redis.RedisError):
    """A write reached the master, but no replica confirmed it in time."""


def redis_key(registry, *parts):
    """A key under this app's prefix (``vexpenses.redis_prefix``), e.g. ``vexpenses:users:count``.

    Every key the core and plugins write goes through this, so that several
    apps (or test runs) can share one Redis.
    """
    return registry.settings["vexpenses.redis_prefix"] + ":".join(str(part) for part in parts)


def includeme(config):
    """Create ``registry.redis``, ``request.redis`` and ``request.redis_key(*parts)``;
    a Redis out of reach answers 503 (:mod:`vexpenses_core.unavailable`)."""
    config.include("vexpenses_core.unavailable")
    registry = config.registry
    if getattr(registry, "redis", None) is None:
        registry.redis = make_redis(registry.settings)
    config.add_request_method(lambda request: request.registry.redis, "redis", reify=True)
    config.add_request_method(
        lambda request, *parts: redis_key(request.registry, *parts), "redis_key"
    )
