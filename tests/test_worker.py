"""A real `vexpenses worker` process on real Redis runs the example plugin's task,
survives a SIGKILL mid-task, and never runs a long task twice at once."""

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import redis
from vexpenses_hello.models import Greeting

from vexpenses_core.redis_client import redis_key
from vexpenses_core.testing import run_workers, wait_for, worker_pids, write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))
children = worker_pids


@pytest.fixture
def worker_app(make_testapp, redis_url, tmp_path):
    """A web app sending to Redis, and `vexpenses worker CONFIG --workers 2` consuming."""
    client = redis.Redis.from_url(redis_url)
    testapp = make_testapp(**{"vexpenses.redis_url": redis_url,
                              "vexpenses.plugins": "hello standin"})
    with run_workers(testapp.app.registry.settings, tmp_path, count=2) as proc:
        testapp.worker = proc
        testapp.redis_client = client
        yield testapp
    client.close()


def key(testapp, *parts):
    return redis_key(testapp.app.registry, "standin", *parts)


def greeting(testapp, greeting_id):
    session = testapp.app.registry.dbsession_factory()
    try:
        return session.get(Greeting, greeting_id)
    finally:
        session.close()


def post_greeting(testapp, name, delay=0):
    res = testapp.post_json("/api/v1/standin/greetings", {"name": name, "delay": delay},
                            status=201)
    return res.json["data"]["id"]


def test_worker_runs_task(worker_app):
    res = worker_app.post_json("/api/v1/standin/greetings", {"name": "Ana"}, status=201,
                               headers={"X-Request-ID": "req-from-web"})
    greeting_id = res.json["data"]["id"]
    done = wait_for(lambda: greeting(worker_app, greeting_id).message, 30)
    assert done == "Hello, Ana!"
    client = worker_app.redis_client
    pid = int(client.get(key(worker_app, "pid", greeting_id)))
    assert pid in children(worker_app.worker.pid)  # ran in a worker, not in the test
    # the task ran under the id of the request that queued it
    assert client.get(key(worker_app, "request", greeting_id)) == b"req-from-web"
    # a finished task's message is acknowledged and removed from the stream
    queue = worker_app.app.registry.settings["vexpenses.tasks.queue"]
    assert wait_for(lambda: client.xlen(queue) == 0, 10)


def test_killed_worker_task_runs_again_to_completion(worker_app):
    greeting_id = post_greeting(worker_app, "Bia", delay=3)
    runs_key = key(worker_app, "runs", greeting_id)
    assert wait_for(lambda: worker_app.redis_client.get(runs_key), 30), "task never started"
    victim = int(worker_app.redis_client.get(key(worker_app, "pid", greeting_id)))
    os.kill(victim, signal.SIGKILL)

    done = wait_for(lambda: greeting(worker_app, greeting_id).message, 40)
    assert done == "Hello, Bia!"
    assert int(worker_app.redis_client.get(runs_key)) == 2
    # the supervisor replaced the killed process
    assert wait_for(lambda: len(children(worker_app.worker.pid)) == 2, 20)
    assert victim not in children(worker_app.worker.pid)


def test_task_longer_than_redelivery_timeout_runs_once(worker_app):
    # redelivery is 2 s; the running worker keeps renewing its claim
    greeting_id = post_greeting(worker_app, "Caio", delay=5)
    done = wait_for(lambda: greeting(worker_app, greeting_id).message, 40)
    assert done == "Hello, Caio!"
    time.sleep(3)  # a wrongly redelivered copy would have started by now
    assert int(worker_app.redis_client.get(key(worker_app, "runs", greeting_id))) == 1


def test_worker_refuses_to_start_without_redis(tmp_path):
    env = dict(os.environ, VEXPENSES_REDIS_URL="", VEXPENSES_DATABASE_URL=f"sqlite:///{tmp_path}/w.db")
    result = subprocess.run(
        [VEXPENSES, "worker", str(write_ini(tmp_path)), "--workers", "1"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "workers need a Redis broker" in result.stderr
