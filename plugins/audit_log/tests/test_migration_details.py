"""audit_log_0002 on a database with rows: details move beside the chain, the
re-chained log verifies, and an already broken chain is refused, by row.

On SQLite and on a fresh MariaDB database, with and without a chain key.
"""

import datetime
import importlib.util
import pathlib
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from vexpenses_audit_log import chain

from vexpenses_core import make_app
from vexpenses_core.migrate import MigrationRefused, alembic_config, upgrade
from vexpenses_core.testing import base_settings

MIGRATIONS = pathlib.Path(chain.__file__).parent / "migrations"
KEY = "a-chain-key-for-the-migration-0123"


def revision_module():
    spec = importlib.util.spec_from_file_location(
        "audit_log_0002_details", MIGRATIONS / "audit_log_0002_details.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LEGACY = [
    ("vexpenses_user_registered", "User register", "User 1 (ana@example.com) registered.",
     1, '{"user":{"email":"ana@example.com","id":1}}'),
    ("vexpenses_login_failed", "User login failed", "Failed login for ana@example.com.",
     None, '{"email":"ana@example.com"}'),
    ("vexpenses_profile_viewed", "Get user", "User 2 (bob@example.com) viewed their profile.",
     2, '{"user":{"email":"bob@example.com","id":2}}'),
]


def at_0001_with_rows(url, key=None):
    """An app on a database at audit_log_0001 holding LEGACY, chained the old way."""
    extra = {"vexpenses.audit_log.chain_key": key} if key else {}
    app = make_app(base_settings(url, "audit_log", **extra))
    command.upgrade(alembic_config(app.registry), "audit_log_0001")
    old = revision_module()
    prev = chain.GENESIS
    moment = datetime.datetime(2026, 11, 30, 12, 0, 0, 123456)
    rows = []
    for number, (hook, action, description, user_id, payload) in enumerate(LEGACY, 1):
        row = {"id": number, "uid": uuid.uuid4().hex, "hook": hook, "action": action,
               "description": description, "user_id": user_id, "ip_address": "127.0.0.1",
               "user_agent": "old/1.0", "request_id": f"req-{number}", "payload": payload,
               "created_at": moment, "updated_at": moment, "prev_hash": prev}
        row["hash"] = prev = old._row_hash(row, old.OLD_FIELDS, key.encode() if key else None)
        rows.append(row)
    with app.registry.dbengine.begin() as conn:
        conn.execute(old.entries_old.insert(), rows)
        conn.execute(old.head_table.insert().values(
            id=1, last_id=len(rows), last_hash=prev, anchor_id=1, anchor_hash=chain.GENESIS,
            updated_at=moment))
    return app


def details_of(engine):
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT entry_id, description, ip_address, user_agent, payload, erased_at "
            "FROM audit_log_details ORDER BY entry_id")).all()


@pytest.mark.parametrize("key", [None, KEY])
def test_the_upgrade_moves_details_and_the_log_still_verifies(fresh_url, environ_clean, key):
    app = at_0001_with_rows(fresh_url, key)
    engine = app.registry.dbengine
    upgrade(app.registry)
    secret = key.encode() if key else None
    result = chain.verify(engine, secret)
    assert (result.ok, result.rows, result.erased) == (True, 3, 0), result.problem
    moved = details_of(engine)
    assert [(d.entry_id, d.description, d.ip_address, d.user_agent, d.payload, d.erased_at)
            for d in moved] == [(n, desc, "127.0.0.1", "old/1.0", payload, None)
                                for n, (_, _, desc, _, payload) in enumerate(LEGACY, 1)]
    columns = {c["name"] for c in sa.inspect(engine).get_columns("audit_log_entries")}
    assert not columns & {"description", "ip_address", "user_agent", "payload"}
    # Ana's rows can now be erased, and the chain still holds.
    with engine.begin() as conn:
        assert chain.erase_user(conn, 1, ["ana@example.com"], secret) == 2
    result = chain.verify(engine, secret)
    assert (result.ok, result.erased) == (True, 2)
    # and new rows link on
    writer = chain.ChainWriter(engine, secret)
    assert writer.append([{"uid": uuid.uuid4().hex, "hook": "x", "action": "X",
                           "description": "x.", "user_id": None, "ip_address": None,
                           "user_agent": None, "request_id": None, "payload": "{}",
                           "created_at": chain.utcnow().isoformat()}]) == 1
    assert chain.verify(engine, secret).ok
    engine.dispose()


def test_a_broken_chain_is_refused_by_row_and_left_alone(fresh_url, environ_clean):
    app = at_0001_with_rows(fresh_url)
    engine = app.registry.dbengine
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log_entries SET description = 'nothing' "
                             "WHERE id = 2"))
    with pytest.raises(MigrationRefused) as refused:
        upgrade(app.registry)
    assert "row 2 was altered" in str(refused.value)
    assert "audit_log_details" not in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT description FROM audit_log_entries "
                                   "WHERE id = 2")) == "nothing"
    engine.dispose()


def test_a_chain_written_with_another_key_is_refused(fresh_url, environ_clean):
    at_0001_with_rows(fresh_url, KEY).registry.dbengine.dispose()
    app = make_app(base_settings(fresh_url, "audit_log",
                                 **{"vexpenses.audit_log.chain_key": "another-key-0123456789"}))
    with pytest.raises(MigrationRefused) as refused:
        upgrade(app.registry)
    assert "row 1 was altered" in str(refused.value)
    app.registry.dbengine.dispose()


def test_an_empty_log_upgrades_and_downgrades(fresh_url, environ_clean):
    app = make_app(base_settings(fresh_url, "audit_log"))
    upgrade(app.registry)
    config = alembic_config(app.registry)
    command.downgrade(config, "audit_log@audit_log_0001")
    engine = app.registry.dbengine
    columns = {c["name"] for c in sa.inspect(engine).get_columns("audit_log_entries")}
    assert {"description", "payload"} <= columns and "details_hash" not in columns
    engine.dispose()


def test_a_downgrade_puts_the_details_back_and_chains_them_the_old_way(
        fresh_url, environ_clean):
    app = at_0001_with_rows(fresh_url, KEY)
    engine = app.registry.dbengine
    upgrade(app.registry)
    with engine.begin() as conn:
        chain.erase_user(conn, 2, ["bob@example.com"], KEY.encode())
    command.downgrade(alembic_config(app.registry), "audit_log@audit_log_0001")
    old = revision_module()
    with engine.connect() as conn:
        rows = [row._mapping for row in conn.execute(
            sa.select(old.entries_old.c[*old.OLD_FIELDS, "hash"])
            .order_by(old.entries_old.c.id))]
        head = conn.execute(sa.select(old.head_table)).one()
    prev = chain.GENESIS
    for row in rows:
        assert row["prev_hash"] == prev
        assert old._row_hash(row, old.OLD_FIELDS, KEY.encode()) == row["hash"]
        prev = row["hash"]
    assert head.last_hash == prev
    assert [r["description"] for r in rows] == [LEGACY[0][2], LEGACY[1][2], ""]
    assert rows[2]["payload"] == "{}" and rows[2]["ip_address"] is None
    engine.dispose()
