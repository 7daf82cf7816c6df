"""``vexpenses.redis_url``: plain Redis URLs pass through, ``redis+sentinel://`` is parsed once."""

import pytest
from limits.storage import RedisSentinelStorage

from vexpenses_core.accounts.ratelimit import limits_storage
from vexpenses_core.check import hide_password
from vexpenses_core.redis_client import SentinelTarget, parse_redis_url
from vexpenses_core.settings import ConfigurationError, normalize_settings


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:pw@h:6380/2",
                                 "unix:///run/redis.sock?db=1"])
def test_a_plain_url_is_returned_as_it_is(url):
    assert parse_redis_url(url) == url


def test_a_sentinel_url_names_its_sentinels_master_database_and_passwords():
    target = parse_redis_url(
        "redis+sentinel://app:s%40cret@10.0.0.1:26379, 10.0.0.2:26380,[::1]:26381/main%20db/3"
        "?sentinel_password=other")
    assert target == SentinelTarget(
        sentinels=(("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381)),
        master="main db", db=3, username="app", password="s@cret",
        sentinel_password="other")


def test_without_a_database_or_credentials_it_is_database_0_and_no_password():
    target = parse_redis_url("redis+sentinel://h:26379/mymaster")
    assert (target.db, target.username, target.password, target.sentinel_password) == (
        0, None, None, None)


@pytest.mark.parametrize("url, words", [
    ("http://h:1/0", "must start with redis://"),
    ("redis+sentinel://:topsecret@h/master", "HOST:PORT"),
    ("redis+sentinel://:topsecret@h:0/master", "HOST:PORT"),
    ("redis+sentinel://:topsecret@h:26379,/master", "HOST:PORT"),
    ("redis+sentinel://:topsecret@h:26379", "master's name"),
    ("redis+sentinel://:topsecret@h:26379/master/x", "master's name"),
    ("redis+sentinel://:topsecret@h:26379/master/0/1", "master's name"),
    ("redis+sentinel://:topsecret@h:26379/master?ssl=true", "only the option sentinel_password"),
])
def test_a_bad_url_is_refused_without_repeating_its_password(url, words):
    with pytest.raises(ConfigurationError) as caught:
        parse_redis_url(url)
    assert words in str(caught.value)
    assert "topsecret" not in str(caught.value)


def test_settings_refuse_a_bad_sentinel_url_and_take_a_good_one():
    with pytest.raises(ConfigurationError, match="HOST:PORT"):
        normalize_settings({"vexpenses.redis_url": "redis+sentinel://h/master"}, environ={})
    settings = normalize_settings({"vexpenses.redis_url": "redis+sentinel://h:26379/m/1",
                                   "vexpenses.redis_timeout": "0.5"}, environ={})
    assert settings["vexpenses.tasks.broker"] == "redis"
    assert settings["vexpenses.redis_timeout"] == 0.5


def test_the_rate_limiter_gets_the_database_and_passwords_limits_cannot_read_from_a_url():
    storage = limits_storage({
        "vexpenses.redis_url": "redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/m/4"
                               "?sentinel_password=spw",
        "vexpenses.redis_prefix": "p:", "vexpenses.redis_timeout": 0.5})
    assert isinstance(storage, RedisSentinelStorage)
    assert storage.service_name == "m" and not storage.use_replicas
    kwargs = storage.storage.connection_pool.connection_kwargs
    assert (kwargs["db"], kwargs["password"], kwargs["socket_timeout"]) == (4, "pw", 0.5)
    assert [s.connection_pool.connection_kwargs["password"]
            for s in storage.sentinel.sentinels] == ["spw", "spw"]


def test_check_hides_both_passwords_of_a_sentinel_url():
    shown = hide_password("redis+sentinel://app:pw1@h:1,h:2/m/0?sentinel_password=pw2")
    assert shown == "redis+sentinel://app:***@h:1,h:2/m/0?sentinel_password=***"
