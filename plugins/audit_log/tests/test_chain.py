"""The hash chain: every alteration or removal is found, and pruning keeps it verifiable."""

import datetime

import pytest
import sqlalchemy as sa
from vexpenses_audit_log import chain
from vexpenses_audit_log.testing import stored_rows, write_records

DAYS = datetime.timedelta(days=1)


def execute(app, sql, **params):
    with app.app.registry.dbengine.begin() as conn:
        conn.execute(sa.text(sql), params)


def verify(app, key=None):
    return chain.verify(app.app.registry.dbengine, key)


@pytest.fixture
def five(app):
    """An app whose log holds rows 1 to 5."""
    assert write_records(app.app.registry, 5) == 5
    return app


def test_an_empty_log_verifies(app):
    assert verify(app).ok


def test_rows_link_one_after_the_other(five):
    rows = stored_rows(five)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == chain.GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(rows, rows[1:], strict=False))
    result = verify(five)
    assert (result.ok, result.rows, result.first_id, result.last_id) == (True, 5, 1, 5)
    assert result.last_hash == rows[-1]["hash"]


def test_an_altered_row_is_found(five):
    execute(five, "UPDATE audit_log_entries SET action = 'Nothing' WHERE id = 3")
    result = verify(five)
    assert not result.ok and result.row_id == 3
    assert result.problem == "row 3 was altered: its contents do not match its hash"


def test_altered_details_are_found(five):
    execute(five, "UPDATE audit_log_details SET description = 'nothing happened' "
            "WHERE entry_id = 3")
    result = verify(five)
    assert not result.ok and result.row_id == 3
    assert result.problem == "row 3 was altered: its details do not match its details_hash"


def restart(app, count=5):
    """Empty the log and write ``count`` fresh rows: one app serves many cases."""
    execute(app, "DELETE FROM audit_log_details")
    execute(app, "DELETE FROM audit_log_entries")
    execute(app, "DELETE FROM audit_log_chain")
    write_records(app.app.registry, count)


def test_any_column_altered_is_found(app):
    for column, value in [("user_id", 99), ("action", "Get user"), ("details_hash", "f" * 64),
                          ("created_at", "2020-01-01 00:00:00"), ("request_id", "other"),
                          ("hook", "x"), ("uid", "f" * 32), ("prev_hash", "f" * 64),
                          ("hash", "f" * 64)]:
        restart(app)
        execute(app, f"UPDATE audit_log_entries SET {column} = :value WHERE id = 2",
                value=value)
        assert verify(app).row_id == 2, column
    for column, value in [("payload", "{}"), ("description", "x"), ("ip_address", "10.0.0.1"),
                          ("user_agent", "x"), ("subject_id", 7), ("nonce", "0" * 32)]:
        restart(app)
        execute(app, f"UPDATE audit_log_details SET {column} = :value WHERE entry_id = 2",
                value=value)
        result = verify(app)
        assert result.row_id == 2 and "details" in result.problem, column


def rewrite_details(app, row_id, key=None, **values):
    """What an attacker with the database (not the key) can do: alter a row's
    details, and its details_hash and hash to match."""
    row = stored_rows(app)[row_id - 1]
    row.update(values)
    row["details_hash"] = chain.details_hash(row, key)
    row["hash"] = chain.row_hash(row, key)
    for name, value in values.items():
        execute(app, f"UPDATE audit_log_details SET {name} = :v WHERE entry_id = :id",
                v=value, id=row_id)
    execute(app, "UPDATE audit_log_entries SET details_hash = :d, hash = :h WHERE id = :id",
            d=row["details_hash"], h=row["hash"], id=row_id)
    return row


def test_an_altered_row_with_a_recomputed_hash_is_found_by_the_next_link(five):
    rewrite_details(five, 3, description="nothing happened")
    result = verify(five)
    assert result.row_id == 3
    assert result.problem == "row 3 was altered: row 4 no longer links to it"


def test_the_last_row_altered_and_rehashed_is_found_by_the_head(five):
    row = stored_rows(five)[4]
    row["user_id"] = 7
    execute(five, "UPDATE audit_log_entries SET user_id = 7, hash = :h WHERE id = 5",
            h=chain.row_hash(row))
    result = verify(five)
    assert result.row_id == 5 and "does not match the chain head" in result.problem


def test_a_removed_row_is_found(app):
    for removed, reported in [
        ("id = 3", "row 3 was removed"),
        ("id = 1", "row 1 was removed"),
        ("id IN (2, 3)", "row 2 was removed"),
        ("id = 5", "row 5 was removed (the chain ends at row 5)"),
        ("id >= 4", "row 4 was removed (the chain ends at row 5)"),
    ]:
        restart(app)
        execute(app, f"DELETE FROM audit_log_entries WHERE {removed}")
        result = verify(app)
        assert not result.ok and result.problem == reported


def test_a_row_added_behind_the_writers_back_is_found(five):
    forged = {**stored_rows(five)[4], "id": 6, "uid": "f" * 32, "description": "forged"}
    forged["prev_hash"] = stored_rows(five)[4]["hash"]
    forged["details_hash"] = chain.details_hash(forged)
    forged["hash"] = chain.row_hash(forged)
    with five.app.registry.dbengine.begin() as conn:
        conn.execute(sa.insert(chain.entries),
                     [{c.name: forged[c.name] for c in chain.entries.c}])
        conn.execute(sa.insert(chain.details),
                     [{c.name: forged.get(c.name, 6) for c in chain.details.c}])
    result = verify(five)
    assert result.row_id == 6 and "not part of the chain" in result.problem
    # and the writer carries on after it instead of failing on its id
    assert write_records(five.app.registry, 1) == 1
    assert stored_rows(five)[-1]["id"] == 7


def test_emptying_the_log_and_its_head_is_found(five):
    execute(five, "DELETE FROM audit_log_chain")
    assert "chain head" in verify(five).problem
    execute(five, "DELETE FROM audit_log_entries")
    assert verify(five).ok  # nothing left to vouch for: an empty log


def test_a_lost_head_is_rebuilt_from_the_rows_and_the_chain_goes_on(five):
    execute(five, "DELETE FROM audit_log_chain")
    write_records(five.app.registry, 2)
    assert [r["id"] for r in stored_rows(five)] == [1, 2, 3, 4, 5, 6, 7]
    assert verify(five).ok


def test_a_replayed_record_is_written_once(app):
    registry = app.app.registry
    from vexpenses_core.tasks import make_task_request

    request = make_task_request(registry)
    record = registry.audit_log_recorder.build("vexpenses_x", request, {"request": request})
    writer = registry.audit_log.writer
    assert writer.append([record, record]) == 1
    assert writer.append([record]) == 0  # a batch replayed from Redis after a crash
    assert len(stored_rows(app)) == 1


def test_with_a_chain_key_only_the_key_holder_can_rehash(make_app):
    key = "a-secret-chain-key-0123456789"
    app = make_app(**{"vexpenses.audit_log.chain_key": key})
    write_records(app.app.registry, 3)
    assert verify(app, key.encode()).ok
    assert not verify(app).ok  # plain SHA-256 does not match an HMAC chain
    # An attacker without the key rewrites row 3 and its hash: still caught.
    row = rewrite_details(app, 3, description="nothing happened")
    execute(app, "UPDATE audit_log_chain SET last_hash = :h", h=row["hash"])
    assert verify(app, key.encode()).row_id == 3


# -- prune ----------------------------------------------------------------------------


@pytest.fixture
def aged(app):
    """Rows 1-5 made 100 days ago, rows 6-8 made now."""
    registry = app.app.registry
    write_records(registry, 5, age=100 * DAYS)
    write_records(registry, 3)
    return app


def prune(app, days=90, batch_size=1000):
    cutoff = chain.utcnow() - days * DAYS
    return chain.prune(app.app.registry.dbengine, cutoff, batch_size)


def test_prune_deletes_old_rows_and_keeps_the_chain_verifiable(aged, monkeypatch):
    batches = []
    real = chain._prune_batch
    monkeypatch.setattr(chain, "_prune_batch", lambda *a: batches.append(a) or real(*a))
    assert prune(aged, batch_size=2) == (5, 6)
    assert len(batches) == 3  # 2 + 2 + 1 rows, one transaction each
    assert [r["id"] for r in stored_rows(aged)] == [6, 7, 8]
    result = verify(aged)
    assert (result.ok, result.rows, result.first_id) == (True, 3, 6)

    # New rows link on; tampering after the anchor is still found.
    write_records(aged.app.registry, 1)
    assert verify(aged).ok
    execute(aged, "DELETE FROM audit_log_entries WHERE id = 6")
    assert verify(aged).problem == "row 6 was removed"


def test_prune_with_nothing_old_deletes_nothing(aged):
    assert prune(aged, days=200) == (0, 1)
    assert len(stored_rows(aged)) == 8 and verify(aged).ok


def test_prune_of_everything_leaves_an_anchor_the_next_row_links_to(aged):
    assert prune(aged, days=0) == (8, 9)
    assert stored_rows(aged) == [] and verify(aged).ok
    write_records(aged.app.registry, 2)
    assert [r["id"] for r in stored_rows(aged)] == [9, 10]
    assert verify(aged).ok


def test_prune_stops_at_the_first_new_row(app):
    # An old row written late (after a new one) stays: only a prefix of the chain goes.
    registry = app.app.registry
    write_records(registry, 2, age=100 * DAYS)
    write_records(registry, 1)
    write_records(registry, 1, age=100 * DAYS)
    assert prune(app) == (2, 3)
    assert [r["id"] for r in stored_rows(app)] == [3, 4]
    assert verify(app).ok


def test_concurrent_writers_keep_one_order(make_app):
    """Two "processes" (apps with their own engines) and two threads each append at once:
    the chain-head lock makes them take turns, and the chain holds."""
    import threading

    apps = [make_app(), make_app()]
    errors = []

    def write(app):
        try:
            for _ in range(10):
                write_records(app.app.registry, 3)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(app,)) for app in apps for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    rows = stored_rows(apps[0])
    assert [r["id"] for r in rows] == list(range(1, 121))
    result = verify(apps[0])
    assert result.ok and result.rows == 120


def test_details_left_by_removed_rows_do_not_stop_the_writer(five):
    execute(five, "DELETE FROM audit_log_entries WHERE id >= 4")
    execute(five, "DELETE FROM audit_log_chain")
    assert write_records(five.app.registry, 1) == 1
    assert [r["id"] for r in stored_rows(five)] == [1, 2, 3, 6]
