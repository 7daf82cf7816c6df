"""Live progress of running imports, in Redis.

One hash per import holds the counts of every *committed* batch: each batch
adds its counts once, after its transaction commits. Counts in Redis can
therefore lag the database but never lead it, which is what keeps the
progress from going backwards when the hash is lost and rebuilt from the
database's chunk rows.

A rebuild can run between a batch's commit and its add, and so already
count that batch. The hash therefore also keeps each chunk's checkpoint
(the row its next batch starts at): a rebuild writes the checkpoints it
read with the counts, and a batch whose checkpoint is not past the stored
one is not added again.

A finished import leaves a short-lived ``done`` marker instead of nothing:
a batch whose counts arrive after the import finished, or a status request
that rebuilds from a snapshot taken just before it finished, must not bring
the hash back for a day. Updates are WATCH transactions (not Lua scripts,
which the embedded default's fakeredis lacks).
"""

from redis.exceptions import WatchError
from zope.interface import implementer

from vexpenses_core.redis_client import replicated_through

from .interfaces import IProgressStore

COUNTS = ("processed", "imported", "rejected", "duplicates")

# Long enough to outlast any status request that saw the import running.
DONE_TTL = 60


@implementer(IProgressStore)
class RedisProgressStore:
    def __init__(self, redis, key, ttl):
        self.redis = redis
        self.key = key  # import id -> Redis key
        self.ttl = ttl

    def start(self, import_id, planned, started):
        self.seed(import_id, dict.fromkeys(COUNTS, 0), planned, started)

    def seed(self, import_id, counts, planned, started, checkpoints=None):
        def write(pipe, seeded, done, checkpoint):
            if done:
                return False
            pipe.delete(key)
            pipe.hset(key, mapping={
                **{name: counts[name] for name in COUNTS},
                **{_chunk_field(index): row for index, row in (checkpoints or {}).items()},
                "planned": planned, "started": started, "seeded": 1,
                **({"master": master} if master else {})})
            pipe.expire(key, self.ttl)

        key = self.key(import_id)
        master = self._master_id()
        self._update(key, write)

    def add(self, import_id, counts, checkpoint=None):
        def write(pipe, seeded, done, stored):
            if done or not seeded:  # finished, or lost: the next read rebuilds it
                return False
            if checkpoint is not None:
                if stored is not None and int(stored) >= checkpoint[1]:
                    return False  # a rebuild read this batch from the database already
                pipe.hset(key, _chunk_field(checkpoint[0]), checkpoint[1])
            for name in COUNTS:
                if counts[name]:
                    pipe.hincrby(key, name, counts[name])
            pipe.expire(key, self.ttl)

        key = self.key(import_id)
        self._update(key, write, _chunk_field(checkpoint[0]) if checkpoint else None)

    def read(self, import_id):
        raw = self.redis.hgetall(self.key(import_id))
        if not raw.get(b"seeded") or raw.get(b"done"):
            return None
        master = self._master_id()
        if master and raw.get(b"master", b"").decode() != master:
            return None  # seeded before a failover: rebuilt from the database
        return {name.decode(): float(value) if name == b"started" else int(value)
                for name, value in raw.items()
                if name not in (b"seeded", b"master") and not name.startswith(b"chunk:")}

    def _master_id(self):
        """Through Sentinel, the master's replication id, else None.

        A replica promoted by a failover may lack the old master's last
        additions, and nothing would ever add them back: the counts would lag
        the database to the end. A promotion gives the new master a new
        replication id, so a hash seeded under another id is read as lost,
        and rebuilt from the database like one that is missing.
        """
        if not replicated_through(self.redis):
            return None
        return self.redis.info("replication").get("master_replid")

    def drop(self, import_id):
        key = self.key(import_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, "done", 1)
        pipe.expire(key, DONE_TTL)
        pipe.execute()

    def _update(self, key, write, field=None):
        """Run ``write(pipe, seeded, done, value of field)`` atomically, retrying
        if the hash changes."""
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(key)
                    seeded, done, value = pipe.hmget(key, "seeded", "done", field or "seeded")
                    pipe.multi()
                    if write(pipe, seeded, done, value) is False:
                        pipe.reset()
                        return
                    pipe.execute()
                    return
                except WatchError:
                    continue


def _chunk_field(index):
    return f"chunk:{index}"
