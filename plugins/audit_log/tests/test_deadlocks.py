"""The chain writer runs a batch again after a deadlock, and writes it once."""

from vexpenses_audit_log import chain
from vexpenses_audit_log.testing import stored_rows, write_records

from vexpenses_core.testing import deadlock_error


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
