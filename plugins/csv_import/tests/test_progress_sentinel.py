"""The progress store through a ``redis+sentinel://`` URL."""

import redis
from vexpenses_csv_import.progress import RedisProgressStore

from vexpenses_core.redis_client import connect
from vexpenses_core.testing import wait_for


def test_import_progress_through_sentinel(redis_sentinel):
    client = connect(redis_sentinel.url, 1)
    store = RedisProgressStore(client, lambda import_id: f"test:progress:{import_id}", 60)
    store.start(7, planned=10, started=1.5)
    store.add(7, {"processed": 4, "imported": 3, "rejected": 1, "duplicates": 0}, (0, 5))
    assert store.read(7) == {"processed": 4, "imported": 3, "rejected": 1, "duplicates": 0,
                             "planned": 10, "started": 1.5}
    assert redis.Redis(port=redis_sentinel.primary_port).exists("test:progress:7")


def test_progress_seeded_before_a_failover_is_read_as_lost(redis_sentinel):
    """The promoted replica lacks the last additions: the counts are rebuilt, not trusted."""
    store = RedisProgressStore(connect(redis_sentinel.url, 1),
                               lambda import_id: f"test:progress:{import_id}", 60)
    store.start(7, planned=10, started=1.5)
    store.add(7, {"processed": 4, "imported": 4, "rejected": 0, "duplicates": 0}, (0, 5))
    redis_sentinel.cut_replica()
    store.add(7, {"processed": 3, "imported": 3, "rejected": 0, "duplicates": 0}, (0, 8))
    assert store.read(7)["processed"] == 7
    redis_sentinel.kill_primary()
    _, port = redis_sentinel.wait_for_failover()
    survivor = redis.Redis(port=port)
    assert survivor.hget("test:progress:7", "processed") == b"4"  # the second add is gone
    assert wait_for(lambda: _read_or_fail(store, 7) is None, 15)
    # Rebuilt from the database (here, by hand), it is trusted again.
    store.seed(7, {"processed": 7, "imported": 7, "rejected": 0, "duplicates": 0}, 10, 1.5,
               {0: 8})
    assert store.read(7)["processed"] == 7


def _read_or_fail(store, import_id):
    try:
        return store.read(import_id)
    except redis.ConnectionError:  # the client has not found the new master yet
        return "unreachable"
