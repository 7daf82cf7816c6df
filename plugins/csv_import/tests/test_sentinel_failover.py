"""A Redis master SIGKILLed in the middle of an import, behind Sentinel.

Real `vexpenses worker` processes, MariaDB, csv_import and audit_log, Redis
as a primary, a replica and three sentinels. The primary dies without a
word while chunks are being written; the sentinels promote the replica,
which may lack the primary's last writes. The import must still end with
exact counts, no audit record may be lost, and meanwhile every request is
answered with a success or a 503 in the envelope, never a 500 or a hang.
"""

import json
import threading
import time

import pytest
import sqlalchemy as sa
import webtest
from vexpenses_audit_log import chain
from vexpenses_audit_log.models import AuditLogDetails, AuditLogEntry
from vexpenses_csv_import.models import Import
from vexpenses_csv_import.testing import import_status, make_csv, people, upload

from vexpenses_core.models import User
from vexpenses_core.testing import bearer, make_user, run_workers, wait_for

CSV = {"chunk_bytes": "6000", "batch_rows": "20", "batch_delay": "0.05"}
TIMEOUT = 1  # vexpenses.redis_timeout, seconds
# A request may wait the timeout, the retries of a refused connection, and its
# own work: a bound on hanging, far below what a stuck client would wait.
MARGIN = 3
# The hooks only the web process calls here: each call must leave exactly one row.
WEB_HOOKS = ("vexpenses_user_logged_in", "vexpenses_import_uploaded", "vexpenses_import_viewed")


def count_hook_calls(registry):
    """Count the web process's hook calls that the audit log records (those with a request)."""
    calls = dict.fromkeys(WEB_HOOKS, 0)
    lock = threading.Lock()

    def after(outcome, hook_name, hook_impls, kwargs):
        if hook_name in calls and kwargs.get("request") is not None:
            with lock:
                calls[hook_name] += 1

    registry.pm.add_hookcall_monitoring(lambda *args: None, after)
    return calls


class Hammer(threading.Thread):
    """Logs in and reads /me in a loop, recording each answer's status and duration."""

    def __init__(self, wsgi, email, password):
        super().__init__(daemon=True)
        self.app = webtest.TestApp(wsgi, extra_environ={"REMOTE_ADDR": "127.0.0.2"})
        self.credentials = {"email": email, "password": password}
        self.token = None
        self.answers = []  # (path, status, seconds, response)
        self.stop = threading.Event()

    def call(self, method, path, **kwargs):
        start = time.monotonic()
        response = getattr(self.app, method)(path, status="*", expect_errors=True, **kwargs)
        self.answers.append((path, response.status_int, time.monotonic() - start, response))
        return response

    def run(self):
        while not self.stop.is_set():
            login = self.call("post_json", "/api/v1/user/authenticate", params=self.credentials)
            if login.status_int == 201:
                self.token = login.json["data"]["token"]
            if self.token:
                self.call("get", "/api/v1/user/me", headers=bearer(self.token))
            time.sleep(0.05)

    def last_ok_since(self, moment_index):
        """Whether a login and a /me both succeeded after answer number ``moment_index``."""
        later = self.answers[moment_index:]
        return ({path for path, status, *_ in later if status in (200, 201)}
                == {"/api/v1/user/authenticate", "/api/v1/user/me"})


@pytest.fixture
def stack(redis_sentinel, make_testapp, tmp_path):
    """The app and two workers on the Sentinel URL, audit_log and csv_import enabled."""
    uploads = str(tmp_path / "uploads")
    app = make_testapp(**{
        "vexpenses.redis_url": redis_sentinel.url,
        "vexpenses.redis_timeout": str(TIMEOUT),
        "vexpenses.plugins": "csv_import audit_log",
        "vexpenses.upload_dir": uploads,
        "vexpenses.tasks.outbox_seconds": "2",
        "vexpenses.ratelimit.login_ip": "100000 per minute",
        "vexpenses.ratelimit.login_account": "100000 per minute",
        **{f"vexpenses.csv_import.{k}": v for k, v in CSV.items()}})
    env = {f"VEXPENSES_CSV_IMPORT_{k.upper()}": v for k, v in CSV.items()}
    with run_workers(app.app.registry.settings, tmp_path, count=2,
                     VEXPENSES_UPLOAD_DIR=uploads, **env) as proc:
        app.worker = proc
        app.log = tmp_path / "worker.log"
        yield app
        app.app.registry.audit_log.close()


@pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
def test_a_killed_primary_loses_no_import_row_and_no_audit_record(stack, redis_sentinel):
    registry = stack.app.registry
    calls = count_hook_calls(registry)
    _, token = make_user(registry, email="ana@example.com", password="password123")
    make_user(registry, email="hammer@example.com", password="password123")
    rows = people(1500)
    for i in range(0, 1500, 150):  # bad rows and duplicates spread over every chunk
        rows.insert(i, ("Bad Row", f"bad{i}", "1990-01-01"))
        rows.insert(i + 75, ("Dup Row", f"pessoa{i}@example.com", "1990-01-01"))
    import_id = upload(stack, token, make_csv(rows)).json["data"]["id"]

    seen = []  # the counts of every status answered

    def status():
        response = import_status(stack, token, import_id, status="*")
        assert response.status_int in (200, 503), response.text
        if response.status_int != 200:
            return None
        seen.append(response.json["data"])
        return seen[-1]

    hammer = Hammer(stack.app, "hammer@example.com", "password123")
    hammer.start()
    try:
        assert wait_for(lambda: (status() or {}).get("progress", 0) > 15, 60)
        assert wait_for(lambda: hammer.last_ok_since(0), 30)
        # The replica stalls, so the primary's last writes exist nowhere else when it
        # dies: what asynchronous replication can lose, made certain.
        redis_sentinel.cut_replica(0.8)
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < 0.5:  # progress the primary alone has seen
            status()
        redis_sentinel.kill_primary()
        killed_at = len(hammer.answers)
        redis_sentinel.wait_for_failover(30)
        # Logins and /me work again on the promoted replica, seconds after the switch.
        since = len(hammer.answers)
        assert wait_for(lambda: hammer.last_ok_since(since), 30), hammer.answers[-12:]
        final = wait_for(lambda: (lambda data: data if data and data["status"] in (1, 2)
                                  else None)(status()), 120, interval=0.2)
    finally:
        hammer.stop.set()
        hammer.join(30)
    assert final, f"the import did not finish:\n{stack.log.read_text()[-3000:]}"

    # Exact counts, from the database.
    assert final["status"] == 2
    assert (final["imported"], final["rejected"], final["duplicates"]) == (1500, 10, 10)
    assert final["total"] == final["processed"] == 1520
    # The promoted replica lacked the last progress additions: the counts were
    # rebuilt from the database, and never went back.
    processed = [data["processed"] for data in seen]
    assert processed == sorted(processed), processed
    db = registry.dbsession_factory()
    try:
        assert db.scalar(sa.select(sa.func.count()).select_from(User)) == 2 + 1500
        assert db.get(Import, import_id).status == 2
    finally:
        db.close()

    # Every answer during the switch was a success or a 503 in the envelope, in time.
    during = hammer.answers[killed_at:]
    print(f"{len(hammer.answers)} answers, {len(during)} after the kill, "
          f"{sum(1 for a in during if a[1] == 503)} of them 503; slowest "
          f"{max(a[2] for a in hammer.answers):.2f} s")
    assert any(status == 503 for _, status, *_ in during), "the switch was never seen"
    for path, status, seconds, response in hammer.answers:
        assert status in (200, 201, 503), (path, status, response.text)
        assert seconds < TIMEOUT + MARGIN, (path, seconds)
        if status == 503:
            assert response.json == {"status": False,
                                     "message": "The service is temporarily unavailable.",
                                     "errors": "The service is temporarily unavailable."}
            assert int(response.headers["Retry-After"]) > 0

    # Not one audit record lost: each web hook call is a row, and the workers'
    # records name every imported user (the records survive in Redis only once
    # a replica has them, or are written to the chain directly).
    registry.audit_log.flush()
    entries, details = AuditLogEntry.__table__, AuditLogDetails.__table__

    def stored(hook):
        with registry.dbengine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).where(entries.c.hook == hook))

    def recorded_user_ids():
        with registry.dbengine.connect() as conn:
            payloads = conn.scalars(
                sa.select(details.c.payload).join(entries, entries.c.id == details.c.entry_id)
                .where(entries.c.hook == "vexpenses_users_imported")).all()
        return {user_id for payload in payloads for user_id in json.loads(payload)["user_ids"]}

    with registry.dbengine.connect() as conn:
        imported = set(conn.scalars(sa.select(User.id).where(User.password_hash.is_(None))))
    assert len(imported) == 1500
    # The workers write what waits in Redis within a few flushes.
    assert wait_for(lambda: all(stored(hook) == calls[hook] for hook in WEB_HOOKS)
                    and imported <= recorded_user_ids(), 60), (
        {hook: (calls[hook], stored(hook)) for hook in WEB_HOOKS},
        len(imported - recorded_user_ids()))
    assert calls["vexpenses_user_logged_in"] > 0
    assert chain.verify(registry.dbengine).ok
