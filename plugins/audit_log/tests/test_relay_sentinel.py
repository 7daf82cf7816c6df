"""The audit relay through a ``redis+sentinel://`` URL: a push counts once a replica has it."""

import json

import pytest
import redis
from vexpenses_audit_log.relay import RedisRelay

from vexpenses_core.redis_client import NotReplicated, connect


def test_a_push_lands_on_the_master(redis_sentinel):
    relay = RedisRelay(connect(redis_sentinel.url, 1), "test:audit", "test:audit:lock", 10)
    relay.push([{"uid": "a"}, {"uid": "b"}])
    primary = redis.Redis(port=redis_sentinel.primary_port)
    assert [json.loads(raw)["uid"] for raw in primary.lrange("test:audit", 0, -1)] == ["a", "b"]


def test_an_audit_push_no_replica_confirmed_raises_and_was_indeed_at_risk(redis_sentinel):
    relay = RedisRelay(connect(redis_sentinel.url, 1), "test:audit", "test:audit:lock", 10)
    relay.push([{"uid": "kept"}])
    redis_sentinel.cut_replica()
    # The pipeline writes a batch to the chain itself when its push raises.
    with pytest.raises(NotReplicated):
        relay.push([{"uid": "at-risk"}])
    redis_sentinel.kill_primary()
    _, port = redis_sentinel.wait_for_failover()
    survivor = redis.Redis(port=port)
    assert [json.loads(raw)["uid"] for raw in survivor.lrange("test:audit", 0, -1)] == ["kept"]
