"""The progress store through a ``redis+sentinel://`` URL."""

import redis
from vexpenses_csv_import.progress import RedisProgressStore

from vexpenses_core.redis_client import connect


def test_import_progress_through_sentinel(redis_sentinel):
    client = connect(redis_sentinel.url, 1)
    store = RedisProgressStore(client, lambda import_id: f"test:progress:{import_id}", 60)
    store.start(7, planned=10, started=1.5)
    store.add(7, {"processed": 4, "imported": 3, "rejected": 1, "duplicates": 0}, (0, 5))
    assert store.read(7) == {"processed": 4, "imported": 3, "rejected": 1, "duplicates": 0,
                             "planned": 10, "started": 1.5}
    assert redis.Redis(port=redis_sentinel.primary_port).exists("test:progress:7")
