"""The chain writer runs a batch again after a deadlock or a lock, and writes it once;
any other database error is raised at once."""

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from pyramid_retry import IRetryableError
from sqlalchemy import event
from vexpenses_audit_log import chain
from vexpenses_audit_log.testing import stored_rows, write_records

from vexpenses_core.db import make_engine
from vexpenses_core.tasks import make_task_request
from vexpenses_core.testing import deadlock_error
from vexpenses_core.testing.settings import MYSQL_URL
from vexpenses_core.transactions import mysql_error_code


def test_a_deadlock_while_appending_writes_the_batch_once(app, monkeypatch):
    real_lock_head = chain.lock_head
    calls = []

    def lock_head(conn):
        head = real_lock_head(conn)
        calls.append(1)
        if len(calls) == 1:  # after the lock, as a deadlock comes; nothing is written
            raise deadlock_error("SELECT ... FOR UPDATE")
        return head

    monkeypatch.setattr(chain, "lock_head", lock_head)
    assert write_records(app.app.registry, 3) == 3
    assert len(calls) == 2
    rows = stored_rows(app)
    assert [row["id"] for row in rows] == [1, 2, 3]
    assert chain.verify(app.app.registry.dbengine).ok


class Counting:
    """An engine that counts the transactions begun on it: one per attempt of the writer."""

    def __init__(self, engine):
        self.engine = engine
        self.begun = 0

    def begin(self):
        self.begun += 1
        return self.engine.begin()


@pytest.mark.parametrize("problem", ["missing tables", "unknown database"])
def test_an_error_that_waiting_cannot_fix_is_raised_at_once(problem, tmp_path):
    if problem == "missing tables":  # a database never migrated: "no such table"
        url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    else:  # MariaDB's 1049
        url = f"{MYSQL_URL}/vexpenses_no_such_database_{uuid.uuid4().hex[:8]}"
    engine = Counting(make_engine(url))
    with pytest.raises(sa.exc.OperationalError) as raised:
        chain.ChainWriter(engine).append([{"uid": "never-written"}])
    engine.engine.dispose()
    assert engine.begun == 1
    assert not IRetryableError.providedBy(raised.value)


def inserted_twice(engine, table):
    """Make the first INSERT INTO ``table`` run twice in its transaction, the first
    time as if by another writer just before: the second meets a duplicate key."""
    done = []

    def first_by_another(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith(f"INSERT INTO {table} ") and not done:
            done.append(1)
            if executemany:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)

    event.listen(engine, "before_cursor_execute", first_by_another)
    return lambda: event.remove(engine, "before_cursor_execute", first_by_another)


def test_a_head_made_meanwhile_by_another_writer_runs_the_batch_again(app):
    registry = app.app.registry
    counting = Counting(registry.dbengine)
    undo = inserted_twice(registry.dbengine, "audit_log_chain")
    try:
        assert chain.ChainWriter(counting).append(build(registry, 2)) == 2
    finally:
        undo()
    assert counting.begun == 2
    assert [row["id"] for row in stored_rows(app)] == [1, 2]
    assert chain.verify(registry.dbengine).ok


def test_any_other_duplicate_key_is_raised_at_once(app):
    registry = app.app.registry
    assert write_records(registry, 1) == 1
    counting = Counting(registry.dbengine)
    undo = inserted_twice(registry.dbengine, "audit_log_entries")
    try:
        with pytest.raises(sa.exc.IntegrityError):
            chain.ChainWriter(counting).append(build(registry, 2))
    finally:
        undo()
    assert counting.begun == 1
    assert [row["id"] for row in stored_rows(app)] == [1]


def build(registry, count):
    request = make_task_request(registry, "test-records")
    return [registry.audit_log_recorder.build("vexpenses_greeting_sent", request,
                                              {"request": request, "number": number})
            for number in range(count)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_locked_sqlite_database_is_tried_again(app):
    """SQLite's "database is locked" (here at once: no busy timeout) is waited out."""
    registry = app.app.registry
    url = registry.dbengine.url
    engine = make_engine(url)
    event.listen(engine, "connect", lambda dbapi, record: dbapi.execute("PRAGMA busy_timeout=0"))
    holder = registry.dbengine.connect()
    held = holder.begin()  # BEGIN IMMEDIATE: the write lock
    errors = []

    class Writer(chain.ChainWriter):
        def _append(self, records):
            try:
                return super()._append(records)
            except sa.exc.OperationalError as exc:
                errors.append(exc)
                held.rollback()  # the other writer is done
                raise

    try:
        assert Writer(engine).append(build(registry, 3)) == 3
    finally:
        holder.close()
        engine.dispose()
    assert [str(exc.orig) for exc in errors] == ["database is locked"]
    assert [row["id"] for row in stored_rows(app)] == [1, 2, 3]
    assert chain.verify(registry.dbengine).ok


@pytest.mark.parametrize("database_url", ["mysql"], indirect=True)
def test_a_real_deadlock_on_mariadb_runs_the_batch_again(app, monkeypatch):
    """The writer holds the head and waits to append; another transaction holds the
    end of the log and waits for the head. InnoDB rolls back the lighter one, the
    writer, which runs again once the other is done."""
    registry = app.app.registry
    engine = registry.dbengine
    assert write_records(registry, 1) == 1  # the head exists: a writer only locks it
    end_held, head_held = threading.Event(), threading.Event()
    rival = {}

    def other_transaction():
        try:
            with engine.connect() as conn, conn.begin() as tx:
                rival["id"] = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
                # Rows of its own make it the heavier of the two.
                conn.execute(sa.insert(chain.erased), [
                    {"user_id": 10**12 + n, "erased_at": chain.utcnow()} for n in range(20)])
                # Up to the supremum: no row can be appended after the last.
                conn.exec_driver_sql("SELECT id FROM audit_log_entries WHERE id > 0 FOR UPDATE")
                end_held.set()
                assert head_held.wait(30)
                conn.exec_driver_sql("SELECT id FROM audit_log_chain WHERE id = 1 FOR UPDATE")
                tx.rollback()
        except Exception as exc:
            rival["error"] = exc
            end_held.set()

    def waiting(connection_id):
        with engine.connect() as conn:
            return conn.exec_driver_sql(
                "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE "
                f"trx_mysql_thread_id = {int(connection_id)} AND trx_state = 'LOCK WAIT'"
            ).scalar()

    real_lock_head = chain.lock_head
    calls, errors = [], []

    def lock_head(conn):
        head = real_lock_head(conn)
        calls.append(1)
        if len(calls) == 1:
            head_held.set()
            for _ in range(3000):  # until the other transaction waits for the head
                if waiting(rival["id"]):
                    break
                time.sleep(0.01)
        return head

    real_append = chain.ChainWriter._append

    def append(self, records):
        try:
            return real_append(self, records)
        except sa.exc.DBAPIError as exc:
            errors.append(exc)
            raise

    monkeypatch.setattr(chain, "lock_head", lock_head)
    monkeypatch.setattr(chain.ChainWriter, "_append", append)
    thread = threading.Thread(target=other_transaction)
    thread.start()
    try:
        assert end_held.wait(30)
        assert "error" not in rival
        assert write_records(registry, 3) == 3
    finally:
        head_held.set()
        thread.join(60)
    assert "error" not in rival
    assert [mysql_error_code(exc) for exc in errors] == [1213]
    assert len(calls) == 2
    assert [row["id"] for row in stored_rows(app)] == [1, 2, 3, 4]
    assert chain.verify(engine).ok
    with engine.connect() as conn:  # the other transaction's rows were rolled back
        assert conn.scalar(sa.select(sa.func.count()).select_from(chain.erased)) == 0
