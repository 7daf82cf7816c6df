"""after_commit: what follows the commit runs only after it, and cannot undo it;
and which errors are a lock."""

import logging
import sqlite3
import types

import pytest
import sqlalchemy as sa
import transaction

from vexpenses_core.testing import deadlock_error
from vexpenses_core.transactions import after_commit, is_sqlite_busy


def a_request():
    return types.SimpleNamespace(tm=transaction.TransactionManager(explicit=True))


def test_after_commit_runs_once_the_transaction_commits():
    request, calls = a_request(), []
    request.tm.begin()
    after_commit(request, calls.append, "sent")
    assert calls == []
    request.tm.commit()
    assert calls == ["sent"]


def test_after_commit_does_nothing_when_the_transaction_aborts():
    request, calls = a_request(), []
    request.tm.begin()
    after_commit(request, calls.append, "sent")
    request.tm.abort()
    assert calls == []


def test_an_error_after_commit_is_logged_not_raised(caplog):
    request = a_request()

    def broken():
        raise ConnectionError("redis is down")

    request.tm.begin()
    after_commit(request, broken)
    with caplog.at_level(logging.WARNING, logger="vexpenses_core.transactions"):
        request.tm.commit()
    assert "broken failed after commit" in caplog.text


class Confused:
    """A data manager whose ``should_retry`` itself fails."""

    def should_retry(self, error):
        raise IndexError("no error code")

    def abort(self, txn):
        pass

    tpc_begin = commit = tpc_vote = tpc_finish = tpc_abort = abort

    def sortKey(self):  # noqa: N802 (the transaction package's name)
        return "confused"


def test_a_data_manager_that_cannot_tell_leaves_the_error_and_no_transaction():
    import pytest

    from vexpenses_core.transactions import run_in_transaction

    tm = transaction.TransactionManager(explicit=True)

    def work():
        tm.get().join(Confused())
        raise ValueError("bad row")

    with pytest.raises(ValueError):
        run_in_transaction(tm, work, pause=0)
    tm.begin()  # the failed one was aborted
    tm.abort()


def test_only_sqlite_busy_or_locked_is_a_sqlite_lock(tmp_path):
    path = tmp_path / "x.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError) as missing:
        other.execute("SELECT * FROM missing")
    holder.close()
    other.close()
    assert is_sqlite_busy(locked.value)
    assert is_sqlite_busy(sa.exc.OperationalError("BEGIN", (), locked.value))
    assert not is_sqlite_busy(missing.value)
    assert not is_sqlite_busy(deadlock_error("UPDATE t SET x=1"))
