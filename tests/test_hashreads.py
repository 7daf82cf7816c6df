"""The identity cache's own HMGET: answers as redis-py does, fails as redis-py does."""

import socket
import subprocess
import threading
import time
import uuid

import pytest
import redis
import redis.sentinel

from vexpenses_core.hashreads import HashReader, reader_for
from vexpenses_core.redis_client import connect
from vexpenses_core.testing.sentinel import free_port


@pytest.fixture
def client(redis_url):
    client = connect(redis_url, 2)
    if reader_for(client) is None:
        pytest.skip("the tests' Redis is behind Sentinel: the identity cache uses redis-py")
    yield client
    client.close()


@pytest.fixture
def key(client):
    name = f"test:hashreads:{uuid.uuid4().hex}"
    yield name
    client.delete(name)


def test_answers_as_redis_py_does(client, key):
    client.hset(key, mapping={"a": "é" * 40_000, "gen": "1", "empty": ""})
    reader = reader_for(client)
    for fields in (("a", "gen"), ("missing", "gen"), ("empty",), ("missing",)):
        assert reader.hmget(key, *fields) == client.hmget(key, *fields)
    assert reader.hmget(f"{key}:nothing", "a", "gen") == [None, None]


def test_an_error_reply_raises_and_keeps_the_connection(client, key):
    client.set(key, "a string, not a hash")
    reader = reader_for(client)
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        reader.hmget(key, "a")
    client.delete(key)
    client.hset(key, "a", "1")
    assert reader.hmget(key, "a") == [b"1"]


def test_a_connection_the_server_closed_is_replaced_once(client, key):
    client.hset(key, "a", "1")
    reader = reader_for(client)
    assert reader.hmget(key, "a") == [b"1"]
    host, port = reader.local.conn.sock.getsockname()
    client.client_kill(f"{host}:{port}")  # that one connection: the Redis is shared
    assert reader.hmget(key, "a") == [b"1"]


def test_each_thread_has_its_own_connection(client, key):
    client.hset(key, "a", "1")
    reader = reader_for(client)
    reader.hmget(key, "a")
    seen = []

    def read():
        reader.hmget(key, "a")
        seen.append(reader.local.conn)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    assert seen[0] is not reader.local.conn


def test_an_unreachable_server_is_a_connection_error():
    reader = HashReader((socket.AF_INET, ("127.0.0.1", free_port())), 0, None, None, 1)
    with pytest.raises(redis.ConnectionError):
        reader.hmget("k", "a")


def test_a_server_that_never_answers_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        reader = HashReader((socket.AF_INET, silent.getsockname()), 0, None, None, 0.2)
        started = time.monotonic()
        with pytest.raises(redis.TimeoutError):
            reader.hmget("k", "a")
        assert time.monotonic() - started < 5


@pytest.fixture(scope="module")
def locked_redis(tmp_path_factory):
    """A Redis of our own with a password, on a free port."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--requirepass", "s3cret pass",
         "--dir", str(tmp_path_factory.mktemp("locked-redis"))],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)
    yield port
    server.terminate()
    server.wait(10)


def test_a_password_and_a_database_are_used(locked_redis):
    client = redis.Redis(port=locked_redis, password="s3cret pass", db=3)
    client.hset("k", "a", "in three")
    reader = reader_for(client)
    assert reader.hmget("k", "a") == [b"in three"]
    client.close()


def test_a_wrong_password_is_an_authentication_error(locked_redis):
    reader = reader_for(redis.Redis(port=locked_redis, password="wrong"))
    with pytest.raises(redis.AuthenticationError):
        reader.hmget("k", "a")


def test_sentinel_and_tls_clients_keep_redis_py():
    sentinel = redis.sentinel.Sentinel([("127.0.0.1", 1)])
    assert reader_for(sentinel.master_for("mymaster")) is None
    assert reader_for(redis.Redis.from_url("rediss://127.0.0.1:1/0")) is None
    assert reader_for(redis.Redis(unix_socket_path="/tmp/none.sock")) is not None
