"""Records travel off the request's path: buffered, flushed in batches by a background
thread or through Redis and any process, kept while the database is down, and written
when the process exits."""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa
from redis.exceptions import ConnectionError as RedisConnectionError
from vexpenses_audit_log import chain
from vexpenses_audit_log.testing import bearer, settle, stored_rows

from vexpenses_core.testing import make_user, run_workers, wait_for


def me(app, token, times=1):
    for _ in range(times):
        app.get("/api/v1/user/me", headers=bearer(token))


def test_the_background_thread_writes_without_being_asked(make_app):
    app = make_app(**{"vexpenses.audit_log.flush_seconds": "0.05"})
    _, token = make_user(app.app.registry, email="ana@example.com")
    me(app, token)
    assert wait_for(lambda: len(stored_rows(app)) == 1, 10)


def test_a_full_batch_is_written_at_once(make_app):
    app = make_app(**{"vexpenses.audit_log.flush_seconds": "3600",
                      "vexpenses.audit_log.batch_size": "3"})
    _, token = make_user(app.app.registry, email="ana@example.com")
    me(app, token, 2)
    time.sleep(0.2)
    assert stored_rows(app) == []  # fewer than a batch: they wait for the timer
    me(app, token)
    assert wait_for(lambda: len(stored_rows(app)) == 3, 10)


def test_records_wait_while_the_database_is_down(app, monkeypatch, caplog):
    registry = app.app.registry
    writer = registry.audit_log.writer
    _, token = make_user(registry, email="ana@example.com")
    me(app, token, 3)

    def down(records):
        raise sa.exc.OperationalError("INSERT", {}, Exception("gone away"))

    monkeypatch.setattr(writer, "append", down)
    monkeypatch.setattr(writer, "reachable", lambda: False)
    assert registry.audit_log.flush() == 0
    assert registry.audit_log.pending() == 3
    assert "the audit log database is unreachable" in caplog.text
    monkeypatch.undo()
    assert registry.audit_log.flush() == 3
    assert [r["action"] for r in stored_rows(app)] == ["Get user"] * 3
    assert chain.verify(registry.dbengine).ok


def test_a_record_that_cannot_be_written_does_not_block_the_others(app, monkeypatch, caplog):
    registry = app.app.registry
    writer = registry.audit_log.writer
    real = writer.append
    _, token = make_user(registry, email="ana@example.com")
    me(app, token, 3)
    poison = registry.audit_log._pending[1]["uid"]

    def picky(records):
        if any(r["uid"] == poison for r in records):
            raise ValueError("cannot store this one")
        return real(records)

    monkeypatch.setattr(writer, "append", picky)
    assert registry.audit_log.flush() == 2
    assert len(stored_rows(app)) == 2 and registry.audit_log.pending() == 0
    assert f"dropped audit record {poison} of the vexpenses_profile_viewed hook" in caplog.text


def test_a_full_buffer_drops_and_says_so(make_app, caplog):
    app = make_app(**{"vexpenses.audit_log.max_buffer": "2",
                      "vexpenses.audit_log.flush_seconds": "3600"})
    _, token = make_user(app.app.registry, email="ana@example.com")
    me(app, token, 3)
    assert app.app.registry.audit_log.dropped == 1
    assert "the audit buffer is full (2 records): 1 records dropped" in caplog.text
    settle(app)
    assert len(stored_rows(app)) == 2


def test_close_writes_what_is_left(make_app):
    app = make_app(**{"vexpenses.audit_log.flush_seconds": "3600"})
    _, token = make_user(app.app.registry, email="ana@example.com")
    me(app, token, 2)
    app.app.registry.audit_log.close()
    assert len(stored_rows(app)) == 2


# -- Redis ------------------------------------------------------------------------------


@pytest.fixture
def redis_app(make_app, redis_url):
    """Every process drains, as without Redis tasks: the relay's own mechanics."""
    return make_app(**{"vexpenses.redis_url": redis_url,
                       "vexpenses.audit_log.drain": "everywhere",
                       "vexpenses.audit_log.flush_seconds": "3600"})


def queue_length(app):
    return app.app.registry.audit_log.relay.waiting()


def test_with_redis_records_pass_through_a_redis_list(redis_app):
    pipeline = redis_app.app.registry.audit_log
    _, token = make_user(redis_app.app.registry, email="ana@example.com")
    me(redis_app, token, 3)
    relay = pipeline.relay
    pipeline.flush(wait=False)  # takes the lock: pushes, then drains
    assert queue_length(redis_app) == 0 and len(stored_rows(redis_app)) == 3

    me(redis_app, token, 2)
    # Another process holds the drain lock: records are pushed and wait in Redis.
    relay.redis.set(relay.lock_key, "someone-else", px=10_000)
    assert pipeline.flush(wait=False) == 0
    assert queue_length(redis_app) == 2 and len(stored_rows(redis_app)) == 3
    relay.redis.delete(relay.lock_key)
    assert pipeline.flush() == 2
    assert queue_length(redis_app) == 0
    assert chain.verify(redis_app.app.registry.dbengine).ok


def test_any_process_drains_what_another_pushed(redis_app, make_app, redis_url):
    registry = redis_app.app.registry
    _, token = make_user(registry, email="ana@example.com")
    me(redis_app, token, 2)
    registry.audit_log.relay.redis.set(registry.audit_log.relay.lock_key, "x", px=10_000)
    registry.audit_log.flush(wait=False)  # pushed only
    registry.audit_log.relay.redis.delete(registry.audit_log.relay.lock_key)
    other = make_app(**{"vexpenses.redis_url": redis_url,
                        "vexpenses.audit_log.drain": "everywhere",
                        "vexpenses.redis_prefix": registry.settings["vexpenses.redis_prefix"]})
    assert other.app.registry.audit_log.flush() == 2
    assert len(stored_rows(redis_app)) == 2


def test_when_redis_is_down_records_go_straight_to_the_database(redis_app, monkeypatch):
    registry = redis_app.app.registry
    relay = registry.audit_log.relay
    _, token = make_user(registry, email="ana@example.com")
    me(redis_app, token, 2)

    def down(*args, **kwargs):
        raise RedisConnectionError("connection refused")

    monkeypatch.setattr(relay, "push", down)
    monkeypatch.setattr(relay, "drain", down)
    assert registry.audit_log.flush() == 2
    assert len(stored_rows(redis_app)) == 2


def test_a_real_worker_records_its_hook_calls_with_no_user(standin, make_app, redis_url,
                                                           tmp_path):
    """A stand-in third-party plugin's task fires its hook in `vexpenses worker`."""
    app = make_app(**{"vexpenses.redis_url": redis_url,
                      "vexpenses.plugins": "audit_log audit_standin"})
    registry = app.app.registry
    admin, token = make_user(registry, email="root@example.com", is_admin=True)
    with run_workers(registry.settings, tmp_path, count=1,
                     PYTHONPATH=os.pathsep.join([str(standin), os.environ.get("PYTHONPATH", "")])):
        app.post_json("/api/v1/standin/greet", {"name": "Bia", "api_token": "tok-123456"},
                      headers={**bearer(token), "X-Request-ID": "web-greet"}, status=201)
        sent = registry.redis.get  # the task marks itself done in Redis
        key = f"{registry.settings['vexpenses.redis_prefix']}audit_standin:sent:Bia"
        assert wait_for(lambda: sent(key), 30), "the worker never ran the task"

        def written():
            registry.audit_log.flush()
            return len(stored_rows(app)) == 2

        assert wait_for(written, 30)
    queued, done = stored_rows(app)
    assert (queued["action"], queued["user_id"]) == ("Greeting queued", admin)
    assert (done["action"], done["user_id"], done["ip_address"]) == ("Greeting sent", None, None)
    assert done["request_id"] == "web-greet"
    assert '"api_token":"[REDACTED]"' in done["payload"]
    assert chain.verify(registry.dbengine).ok


# -- exit ---------------------------------------------------------------------------------


SERVER_INI = """\
[app:main]
use = egg:vexpenses-core
vexpenses.env = development
vexpenses.database_url = sqlite:///{db}
vexpenses.plugins = audit_log
vexpenses.auto_migrate = true
vexpenses.argon2.time_cost = 1
vexpenses.argon2.memory_cost = 8192
vexpenses.argon2.parallelism = 1
# Only the exit may write: the timer never fires and no batch fills up.
vexpenses.audit_log.flush_seconds = 3600
vexpenses.audit_log.batch_size = 100000

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {port}
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_json(port, path, body):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def test_sigterm_to_pserve_writes_everything_buffered(tmp_path, environ_clean):
    db = tmp_path / "exit.sqlite"
    port = free_port()
    ini = tmp_path / "server.ini"
    ini.write_text(SERVER_INI.format(db=db, port=port))
    pserve = str(pathlib.Path(sys.executable).with_name("pserve"))
    log = open(tmp_path / "pserve.log", "w")
    proc = subprocess.Popen([pserve, str(ini)], stdout=log, stderr=subprocess.STDOUT)
    try:
        def up():
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/openapi.json",
                                       timeout=1)
                return True
            except OSError:
                return False

        assert wait_for(up, 30), (tmp_path / "pserve.log").read_text()
        for n in range(3):
            body = {"name": "Ana Souza", "email": f"user{n}@example.com",
                    "password": "a-long-password", "password_confirmation": "a-long-password",
                    "birth_date": "1990-01-01"}
            assert post_json(port, "/api/v1/user/register", body) == 201
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        actions = conn.scalars(sa.text("SELECT action FROM audit_log_entries ORDER BY id")).all()
    engine.dispose()
    # Each registration also e-mails a verification link.
    assert actions == ["User register", "Verify email"] * 3, (
        tmp_path / "pserve.log").read_text()


def test_the_sigterm_handler_is_left_alone_in_tests_and_when_taken(app):
    assert app.app.registry.audit_log_settings.sigterm is False  # vexpenses.env = testing
    from vexpenses_audit_log.lifecycle import install_sigterm_handler

    previous = signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        assert install_sigterm_handler() is False  # somebody else's handler stays
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_flush_errors_are_logged_and_the_thread_goes_on(make_app, monkeypatch, caplog):
    app = make_app(**{"vexpenses.audit_log.flush_seconds": "0.01"})
    pipeline = app.app.registry.audit_log
    real = pipeline.flush
    monkeypatch.setattr(pipeline, "flush", lambda **kw: 1 / 0)
    _, token = make_user(app.app.registry, email="ana@example.com")
    me(app, token)
    assert wait_for(lambda: "audit flush failed (ZeroDivisionError)" in caplog.text, 10)
    monkeypatch.setattr(pipeline, "flush", real)
    assert wait_for(lambda: len(stored_rows(app)) == 1, 10)


def test_with_redis_tasks_the_web_only_pushes_and_an_idle_worker_writes(make_app, redis_url,
                                                                      tmp_path):
    app = make_app(**{"vexpenses.redis_url": redis_url,
                      "vexpenses.audit_log.flush_seconds": "0.2"})
    registry = app.app.registry
    assert registry.audit_log_settings.drain == "workers"
    _, token = make_user(registry, email="ana@example.com")
    me(app, token, 3)
    assert registry.audit_log.flush() == 0  # pushed, not written: off the web's CPU
    assert queue_length(app) == 3 and stored_rows(app) == []
    # No task runs: the worker drains all the same.
    with run_workers(registry.settings, tmp_path, count=1):
        assert wait_for(lambda: len(stored_rows(app)) == 3, 30)
    assert queue_length(app) == 0
    assert chain.verify(registry.dbengine).ok
