"""Writing batches of records to the chain, and the Redis list they can wait in.

With the redis transport, each process pushes its records to a Redis list,
and one process at a time (holding a Redis lock) writes what waits there to
the chain. Either way a batch that fails while the database answers is
written one record at a time, so that only the unwritable ones are dropped.
"""

import json
import logging
import time
import uuid

from vexpenses_core.redis_client import write_replicated

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    pass


def write_or_isolate(writer, records):
    """Append ``records``; when the batch fails but the database answers, write them
    one at a time and drop (loudly) only those that cannot be written at all."""
    try:
        return writer.append(records)
    except Exception as exc:
        if not writer.reachable():
            raise DatabaseUnavailable() from exc
    written = 0
    for record in records:
        try:
            written += writer.append([record])
        except Exception as exc:
            if not writer.reachable():
                raise DatabaseUnavailable() from exc
            log.error("dropped audit record %s of the %s hook: it cannot be written (%s)",
                      record.get("uid"), record.get("hook"), type(exc).__name__)
    return written


# Trim what was just written, and renew the lock, only if it is still ours:
# a drainer that stalled past the lock's expiry must not trim records that
# another drainer has not written yet.
TRIM_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
    return 1
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisRelay:
    """Records pass through a Redis list; one process at a time writes them."""

    LOCK_MS = 30_000

    def __init__(self, redis, queue_key, lock_key, batch_size):
        self.redis = redis
        self.queue_key = queue_key
        self.lock_key = lock_key
        self.batch_size = batch_size
        self._trim = redis.register_script(TRIM_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    def push(self, records):
        """Append ``records`` to the list; through Sentinel, once a replica has them.

        A push that no replica confirmed raises (NotReplicated, a RedisError):
        the pipeline then writes the batch to the chain itself, and the copy
        in Redis, if it survives, is skipped there by its ``uid``.
        """
        encoded = [json.dumps(r, separators=(",", ":")) for r in records]
        write_replicated(self.redis, lambda pipe: pipe.rpush(self.queue_key, *encoded))

    def waiting(self):
        return self.redis.llen(self.queue_key)

    def drain(self, writer, wait=True, timeout=30):
        """Write what waits in Redis; returns rows written (0 if another process drains)."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self.redis.set(self.lock_key, token, nx=True, px=self.LOCK_MS):
            if not wait or time.monotonic() > deadline:
                return 0
            time.sleep(0.02)
        written = 0
        try:
            while True:
                raw = self.redis.lrange(self.queue_key, 0, self.batch_size - 1)
                if not raw:
                    break
                records = [record for record in map(_decode, raw) if record is not None]
                written += write_or_isolate(writer, records)
                if not self._trim(keys=[self.lock_key, self.queue_key],
                                  args=[token, len(raw), self.LOCK_MS]):
                    log.warning("lost the audit drain lock; another process carries on")
                    break
        finally:
            self._release(keys=[self.lock_key], args=[token])
        return written


def _decode(raw):
    try:
        record = json.loads(raw)
        if isinstance(record, dict) and "uid" in record:
            return record
    except ValueError:
        pass
    log.error("dropped an unreadable audit record from Redis")
    return None
