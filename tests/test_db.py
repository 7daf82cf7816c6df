"""Database behaviour per backend: SQLite pragmas, MariaDB utf8mb4 and retries."""

import threading
import time

import pytest
import sqlalchemy as sa
from pyramid_retry import IRetryableError

from vexpenses_core import make_app
from vexpenses_core.db import make_engine
from vexpenses_core.tasks import run_task
from vexpenses_core.testing import base_settings


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/sub/dir/x.sqlite")  # folders are created
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_mysql_connection_is_utf8mb4(mysql_database):
    engine = make_engine(mysql_database.split("?")[0])  # charset is added when missing
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@character_set_connection").scalar() == "utf8mb4"
        assert conn.exec_driver_sql("SELECT 'ção 😀'").scalar() == "ção 😀"
    engine.dispose()


@pytest.fixture
def mysql_app(mysql_database, environ_clean):
    app = make_app(base_settings(mysql_database, "hello", **{"vexpenses.auto_migrate": "true"}))
    registry = app.registry
    with registry.dbengine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM hello_greetings")
        conn.exec_driver_sql("INSERT INTO hello_greetings (id, name, created_at) VALUES "
                             "(1, 'a', NOW()), (2, 'b', NOW())")
    yield registry
    with registry.dbengine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM hello_greetings")
    registry.queue.close()
    registry.dbengine.dispose()


def test_mysql_deadlock_is_marked_retryable(mysql_app):
    engine = mysql_app.dbengine
    barrier = threading.Barrier(2)
    errors = []

    def worker(first, second):
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f"UPDATE hello_greetings SET name='x' WHERE id={first}")
                barrier.wait(5)
                conn.exec_driver_sql(f"UPDATE hello_greetings SET name='y' WHERE id={second}")
        except sa.exc.DBAPIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=args) for args in ((1, 2), (2, 1))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(errors) == 1
    assert errors[0].orig.args[0] == 1213
    assert IRetryableError.providedBy(errors[0])


def test_task_is_rerun_after_a_lock_wait_timeout(mysql_app):
    """The task's first attempt times out waiting for a lock; the retry succeeds."""
    engine = mysql_app.dbengine
    locked = threading.Event()
    attempts = []

    def hold_lock():
        with engine.begin() as conn:
            conn.exec_driver_sql("SELECT * FROM hello_greetings WHERE id=1 FOR UPDATE")
            locked.set()
            time.sleep(1.5)

    def update(request):
        attempts.append(1)
        session = request.dbsession
        session.execute(sa.text("SET SESSION innodb_lock_wait_timeout = 1"))
        session.execute(sa.text("UPDATE hello_greetings SET name='done' WHERE id=1"))
        return len(attempts)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(10)
    result = run_task(mysql_app, update, (), {})
    holder.join()
    assert result >= 2
    with engine.connect() as conn:
        name = conn.exec_driver_sql("SELECT name FROM hello_greetings WHERE id=1").scalar()
    assert name == "done"


def deadlock():
    from pyramid_retry import mark_error_retryable

    error = RuntimeError("deadlock")
    mark_error_retryable(error)
    return error


def test_run_in_transaction_reruns_retryable_work_and_commits():
    import transaction

    from vexpenses_core.transactions import run_in_transaction

    tm = transaction.TransactionManager(explicit=True)
    calls, committed = [], []

    def work():
        calls.append(1)
        tm.get().addAfterCommitHook(lambda ok: committed.append(ok))
        if len(calls) < 3:
            raise deadlock()
        return "done"

    assert run_in_transaction(tm, work, attempts=3, pause=0) == "done"
    assert len(calls) == 3 and committed == [True]  # aborted attempts never commit


def test_run_in_transaction_raises_other_errors_and_gives_up_after_the_attempts():
    import transaction

    from vexpenses_core.transactions import run_in_transaction

    tm = transaction.TransactionManager(explicit=True)
    with pytest.raises(ValueError):
        run_in_transaction(tm, lambda: (_ for _ in ()).throw(ValueError("bad row")), pause=0)
    calls = []

    def always_deadlocked():
        calls.append(1)
        raise deadlock()

    with pytest.raises(RuntimeError):
        run_in_transaction(tm, always_deadlocked, attempts=2, pause=0)
    assert len(calls) == 2
    tm.begin()  # no transaction was left open
    tm.abort()


class Conflicted(Exception):
    """An error that only the transaction's data manager knows to be retryable."""


class RetryingDataManager:
    """A data manager that, like zope.sqlalchemy's for a deadlock, says: run it again."""

    def __init__(self, tm):
        self.transaction_manager = tm

    def should_retry(self, error):
        return isinstance(error, Conflicted)

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_finish = tpc_abort = abort

    def sortKey(self):  # noqa: N802 (the transaction package's name)
        return "retrying"


def test_the_data_managers_are_asked_before_the_abort():
    """After ``abort()`` the transaction, and its data managers, are gone: ask first."""
    import transaction

    from vexpenses_core.transactions import run_in_transaction

    tm = transaction.TransactionManager(explicit=True)
    calls = []

    def work():
        calls.append(1)
        tm.get().join(RetryingDataManager(tm))
        if len(calls) == 1:
            raise Conflicted()
        return "done"

    assert run_in_transaction(tm, work, pause=0) == "done"
    assert len(calls) == 2
