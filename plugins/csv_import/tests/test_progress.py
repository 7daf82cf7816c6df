"""The Redis progress store against real Redis: late writes never resurrect a finished import."""

import uuid

import pytest
import redis
from vexpenses_csv_import.progress import RedisProgressStore

ZERO = dict.fromkeys(("processed", "imported", "rejected", "duplicates"), 0)
BATCH = {"processed": 5, "imported": 4, "rejected": 1, "duplicates": 0}


@pytest.fixture
def store(redis_url):
    client = redis.Redis.from_url(redis_url)
    prefix = f"test:{uuid.uuid4().hex}:progress:"
    yield RedisProgressStore(client, lambda import_id: f"{prefix}{import_id}", 3600)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def test_batches_add_up(store):
    store.start(1, 10, 100.0)
    store.add(1, BATCH)
    store.add(1, BATCH)
    assert store.read(1) == {"processed": 10, "imported": 8, "rejected": 2, "duplicates": 0,
                             "planned": 10, "started": 100.0}


def test_a_lost_hash_is_not_recreated_by_a_batch(store):
    store.start(1, 10, 100.0)
    store.redis.delete(store.key(1))
    store.add(1, BATCH)
    assert store.read(1) is None  # the status endpoint rebuilds it from the database
    assert not store.redis.exists(store.key(1))


def test_a_batch_or_a_rebuild_after_the_end_leaves_only_the_marker(store):
    store.start(1, 10, 100.0)
    store.drop(1)
    store.add(1, BATCH)  # a chunk's last batch, counted after another chunk finished the import
    store.seed(1, {**ZERO, "processed": 10}, 10, 100.0)  # a status request's stale rebuild
    assert store.read(1) is None
    assert store.redis.hgetall(store.key(1)) == {b"done": b"1"}
    assert 0 < store.redis.ttl(store.key(1)) <= 60


def test_a_rebuild_replaces_what_was_there(store):
    store.start(1, 10, 100.0)
    store.add(1, BATCH)
    store.seed(1, {**ZERO, "processed": 7, "imported": 7}, 10, 100.0)
    assert store.read(1)["processed"] == 7


def test_a_batch_already_read_by_a_rebuild_is_not_counted_twice(store):
    store.start(1, 20, 100.0)
    store.add(1, BATCH, (0, 6))
    # The next batch of chunk 0 (rows 6-10) commits; before its add reaches
    # Redis, the hash is lost and a status request rebuilds it from the
    # database, which already holds that batch.
    store.redis.delete(store.key(1))
    store.seed(1, {**ZERO, "processed": 10, "imported": 8, "rejected": 2}, 20, 100.0,
               {0: 11, 1: 1})
    store.add(1, BATCH, (0, 11))  # the late add of that batch
    assert store.read(1)["processed"] == 10
    store.add(1, BATCH, (1, 6))  # another chunk's first batch still counts
    store.add(1, BATCH, (0, 16))  # and so does chunk 0's next one
    assert store.read(1)["processed"] == 20
