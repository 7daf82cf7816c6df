"""The task outbox: with the Redis broker, a committed request never loses its task."""

import pytest
import redis
import sqlalchemy as sa
from vexpenses_hello.models import Greeting

from vexpenses_core.models import TaskOutbox
from vexpenses_core.testing import run_workers, wait_for


def outbox(registry):
    with registry.dbengine.connect() as conn:
        return conn.execute(sa.select(TaskOutbox.task, TaskOutbox.payload)).all()


def message(registry, greeting_id):
    session = registry.dbsession_factory()
    try:
        return session.get(Greeting, greeting_id).message
    finally:
        session.close()


def redis_down(queue):
    """Make every send fail as if Redis were unreachable; return the undo."""
    real = queue._send

    def fail(*args, **kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    queue._send = fail
    return lambda: setattr(queue, "_send", real)


def test_a_sent_task_leaves_no_row(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert outbox(app.app.registry) == []
    stream = app.app.registry.settings["vexpenses.tasks.queue"]
    assert redis.Redis.from_url(redis_url).xlen(stream) == 1


def test_an_aborted_request_leaves_no_row(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url, "vexpenses.plugins": "hello standin"})
    app.post_json("/api/v1/standin/greetings", {"name": "Ana", "fail": True}, status=500)
    assert outbox(app.app.registry) == []


def test_a_task_whose_send_failed_stays_and_is_sent_later(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    undo = redis_down(registry.queue)
    res = app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201,
                        headers={"X-Request-ID": "req-outbox"})
    undo()
    [(task, payload)] = outbox(registry)
    assert task == "hello.greet"
    assert '"request_id": "req-outbox"' in payload
    # Too young: its send after commit may still be under way.
    assert registry.queue.resend_outbox(older_than=60) == 0
    assert registry.queue.resend_outbox(older_than=0) == 1
    assert outbox(registry) == []
    stream = registry.settings["vexpenses.tasks.queue"]
    assert redis.Redis.from_url(redis_url).xlen(stream) == 1
    assert res.json["data"]["id"]


def test_rows_of_a_disabled_plugin_do_not_stall_the_others(make_testapp, redis_url, caplog):
    """A full batch of rows kept for an unregistered task must not hide the rows behind it."""
    from vexpenses_core.tasks.outbox import OUTBOX_BATCH

    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    with registry.dbengine.begin() as conn:
        payload = '{"args": [], "kwargs": {}, "request_id": null}'
        conn.execute(sa.insert(TaskOutbox), [
            {"task": "gone.plugin_task", "payload": payload}
            for _ in range(OUTBOX_BATCH + 1)])
    undo = redis_down(registry.queue)
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    undo()
    assert registry.queue.resend_outbox(older_than=0) == 1
    tasks = [task for task, _ in outbox(registry)]
    assert len(tasks) == OUTBOX_BATCH + 1 and set(tasks) == {"gone.plugin_task"}
    assert f"{OUTBOX_BATCH + 1} outbox rows wait for the task 'gone.plugin_task'" in caplog.text


def test_resending_while_redis_is_still_down_keeps_the_rows(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    undo = redis_down(registry.queue)
    for name in ("Ana", "Bia"):
        app.post_json("/api/v1/hello/greetings", {"name": name}, status=201)
    try:
        registry.queue.resend_outbox(older_than=0)
    except redis.ConnectionError:
        pass
    undo()
    assert len(outbox(registry)) == 2


def test_the_worker_supervisor_sends_what_the_web_could_not(make_testapp, redis_url, tmp_path):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    undo = redis_down(registry.queue)
    greeting_id = app.post_json("/api/v1/hello/greetings", {"name": "Caio"},
                                status=201).json["data"]["id"]
    undo()
    assert len(outbox(registry)) == 1
    with run_workers(registry.settings, tmp_path, count=1,
                     VEXPENSES_TASK_OUTBOX_SECONDS="1"):
        assert wait_for(lambda: message(registry, greeting_id), 30) == "Hello, Caio!"
    assert outbox(registry) == []
    assert "sent 1 tasks that had stayed in the outbox" in (tmp_path / "worker.log").read_text()


def test_a_row_another_supervisor_is_sending_is_skipped(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url})
    registry = app.app.registry
    if registry.dbengine.dialect.name != "mysql":
        pytest.skip("SKIP LOCKED is MariaDB's; SQLite has one writer at a time anyway")
    undo = redis_down(registry.queue)
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    undo()
    with registry.dbengine.connect() as other:  # another supervisor, mid-send
        other.execute(sa.select(TaskOutbox.id).with_for_update())
        assert registry.queue.resend_outbox(older_than=0) == 0
        other.rollback()
    assert registry.queue.resend_outbox(older_than=0) == 1
    assert outbox(registry) == []
