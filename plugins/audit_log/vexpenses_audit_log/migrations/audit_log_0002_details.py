"""audit_log: personal details beside the chain, so that they can be erased

Moves each row's description, client address, user agent and arguments into
``audit_log_details``, with a random nonce, and chains the row over their
digest (``details_hash``) instead: erasing a person's details (the LGPD
right to erasure) then leaves the chain verifiable. Adds the tombstones
table, ``audit_log_erased``.

Every row's hash changes, so the old chain is verified first, with the old
rule, and the migration refuses to run on a chain that is already broken,
naming the row: re-chaining it would launder the tampering. The chain key
(``vexpenses.audit_log.chain_key`` or ``VEXPENSES_AUDIT_LOG_CHAIN_KEY``) is
read from the app's settings, so it must be the one the log was written
with.

Revision ID: audit_log_0002
Revises: audit_log_0001
Create Date: 2026-12-04
"""

import hashlib
import hmac
import json
import logging
import secrets

import sqlalchemy as sa
from alembic import context, op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.migrate import MigrationRefused
from vexpenses_core.models import BigId

revision = "audit_log_0002"
down_revision = "audit_log_0001"
branch_labels = None
depends_on = None

log = logging.getLogger("vexpenses_core.migrate")

BATCH = 1000
GENESIS = "0" * 64

# The hashing rules, frozen here as they were and as they become: a later
# change to vexpenses_audit_log.chain must not change what this revision does.
OLD_FIELDS = ("id", "uid", "hook", "action", "description", "user_id", "ip_address",
              "user_agent", "request_id", "payload", "created_at", "updated_at", "prev_hash")
NEW_FIELDS = ("id", "uid", "hook", "action", "user_id", "request_id", "details_hash",
              "created_at", "updated_at", "prev_hash")
DETAIL_FIELDS = ("nonce", "subject_id", "description", "ip_address", "user_agent", "payload")
MOVED = ("description", "ip_address", "user_agent", "payload")


def _stamp(value):
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _digest(values, key):
    message = json.dumps(values, ensure_ascii=True, separators=(",", ":")).encode()
    if key:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def _row_hash(row, fields, key):
    return _digest([_stamp(row[name]) if name in ("created_at", "updated_at") else row[name]
                    for name in fields], key)


def chain_key():
    from vexpenses_audit_log.config import parse_settings

    settings = context.config.attributes.get("settings") or {}
    return parse_settings(settings).chain_key


def _table(name, *columns):
    return sa.table(name, *(sa.column(column) for column in columns))


entries_old = sa.table(
    "audit_log_entries", sa.column("id", BigId), sa.column("uid"), sa.column("hook"),
    sa.column("action"), sa.column("description"), sa.column("user_id", BigId),
    sa.column("ip_address"), sa.column("user_agent"), sa.column("request_id"),
    sa.column("payload"), sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime), sa.column("prev_hash"), sa.column("hash"),
    sa.column("details_hash"))
details = sa.table(
    "audit_log_details", sa.column("entry_id", BigId), sa.column("subject_id", BigId),
    sa.column("nonce"), sa.column("description"), sa.column("ip_address"),
    sa.column("user_agent"), sa.column("payload"), sa.column("erased_at", UTCDateTime))
head_table = sa.table("audit_log_chain", sa.column("id"), sa.column("last_id", BigId),
                      sa.column("last_hash"), sa.column("anchor_id", BigId),
                      sa.column("anchor_hash"), sa.column("updated_at", UTCDateTime))


def _batches(conn, columns):
    after = None
    while True:
        query = sa.select(*columns).order_by(entries_old.c.id).limit(BATCH)
        if after is not None:
            query = query.where(entries_old.c.id > after)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        after = rows[-1].id


def check_old_chain(conn, key):
    """The head, once the chain written with the old rule is found whole; refuses if not."""
    head = conn.execute(sa.select(head_table).where(head_table.c.id == 1)).first()
    has_rows = conn.scalar(sa.select(entries_old.c.id).limit(1)) is not None
    if head is None:
        if has_rows:
            raise MigrationRefused(
                "audit_log_0002 re-chains the audit log, and will not re-chain a broken one: "
                "the chain head (the row of audit_log_chain) is missing. Restore it from a "
                "backup, or keep the log as evidence and empty both tables, then migrate.")
        return None
    expected_id, expected_prev = head.anchor_id, head.anchor_hash
    columns = [entries_old.c[name] for name in (*OLD_FIELDS, "hash")]
    for rows in _batches(conn, columns):
        for row in rows:
            mapping = row._mapping
            if (row.id != expected_id or row.prev_hash != expected_prev
                    or _row_hash(mapping, OLD_FIELDS, key) != row.hash):
                raise MigrationRefused(
                    f"audit_log_0002 re-chains the audit log, and will not re-chain a broken "
                    f"one: row {min(row.id, expected_id)} was altered, removed or inserted "
                    f"(see `vexpenses audit verify` before upgrading; with a chain key, it "
                    f"must be the key the log was written with). Rows up to "
                    f"{expected_id - 1} are whole.")
            expected_id, expected_prev = row.id + 1, row.hash
    if expected_id - 1 != head.last_id or expected_prev != head.last_hash:
        raise MigrationRefused(
            f"audit_log_0002 re-chains the audit log, and will not re-chain a broken one: "
            f"the chain ends at row {expected_id - 1} but its head names row {head.last_id}.")
    return head


def rechain(conn, head, key):
    """Move every row's details beside it and chain it over their digest."""
    prev = head.anchor_hash
    columns = [entries_old.c[name] for name in (*OLD_FIELDS, "hash")]
    moved = 0
    for rows in _batches(conn, columns):
        side_rows, updates = [], []
        for row in rows:
            side = {"entry_id": row.id, "subject_id": None, "nonce": secrets.token_hex(16),
                    **{name: getattr(row, name) for name in MOVED}, "erased_at": None}
            new = dict(row._mapping)
            new["details_hash"] = _digest([side[name] for name in DETAIL_FIELDS], key)
            new["prev_hash"] = prev
            new["hash"] = prev = _row_hash(new, NEW_FIELDS, key)
            side_rows.append(side)
            updates.append({"row_id": row.id, "new_details_hash": new["details_hash"],
                            "new_prev_hash": new["prev_hash"], "new_hash": new["hash"]})
        conn.execute(sa.insert(details), side_rows)
        conn.execute(
            sa.update(entries_old).where(entries_old.c.id == sa.bindparam("row_id")).values(
                details_hash=sa.bindparam("new_details_hash"),
                prev_hash=sa.bindparam("new_prev_hash"), hash=sa.bindparam("new_hash")),
            updates)
        moved += len(rows)
    conn.execute(sa.update(head_table).where(head_table.c.id == 1).values(last_hash=prev))
    return moved


def upgrade():
    conn = op.get_bind()
    key = chain_key()
    head = check_old_chain(conn, key)
    op.create_table(
        "audit_log_details",
        sa.Column("entry_id", BigId, autoincrement=False, nullable=False),
        sa.Column("subject_id", BigId, nullable=True),
        sa.Column("nonce", sa.String(32), nullable=False),
        sa.Column("description", sa.String(1000), nullable=True),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("payload", sa.Text, nullable=True),
        sa.Column("erased_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name=op.f("pk_audit_log_details")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_audit_log_details_subject_id"), "audit_log_details",
                    ["subject_id"])
    op.create_table(
        "audit_log_erased",
        sa.Column("user_id", BigId, autoincrement=False, nullable=False),
        sa.Column("email_digest", sa.String(64), nullable=True),
        sa.Column("erased_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_audit_log_erased")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_audit_log_erased_email_digest"), "audit_log_erased",
                    ["email_digest"])
    op.add_column("audit_log_entries", sa.Column("details_hash", sa.String(64), nullable=True))
    if head is not None:
        moved = rechain(conn, head, key)
        log.info("audit_log_0002: moved the details of %d audit rows and re-chained them",
                 moved)
    with op.batch_alter_table("audit_log_entries") as batch:
        batch.alter_column("details_hash", existing_type=sa.String(64), nullable=False)
        for name in MOVED:
            batch.drop_column(name)


def downgrade():
    conn = op.get_bind()
    key = chain_key()
    with op.batch_alter_table("audit_log_entries") as batch:
        batch.add_column(sa.Column("description", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("ip_address", sa.String(45), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(255), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text, nullable=True))
    head = conn.execute(sa.select(head_table).where(head_table.c.id == 1)).first()
    if head is not None:
        # Erased details come back as an empty description and arguments: the
        # old rule has no place for "erased".
        prev = head.anchor_hash
        columns = [entries_old.c[name] for name in (*OLD_FIELDS, "hash")]
        for rows in _batches(conn, columns):
            sides = {side.entry_id: side for side in conn.execute(
                sa.select(details).where(details.c.entry_id.between(rows[0].id, rows[-1].id)))}
            updates = []
            for row in rows:
                side = sides.get(row.id)
                new = dict(row._mapping)
                new.update({name: getattr(side, name, None) for name in MOVED})
                new["description"] = new["description"] or ""
                new["payload"] = new["payload"] or "{}"
                new["prev_hash"] = prev
                new["hash"] = prev = _row_hash(new, OLD_FIELDS, key)
                updates.append({"row_id": row.id, **{f"new_{name}": new[name] for name in (
                    *MOVED, "prev_hash", "hash")}})
            conn.execute(
                sa.update(entries_old).where(entries_old.c.id == sa.bindparam("row_id"))
                .values(**{name: sa.bindparam(f"new_{name}")
                           for name in (*MOVED, "prev_hash", "hash")}),
                updates)
        conn.execute(sa.update(head_table).where(head_table.c.id == 1).values(last_hash=prev))
    with op.batch_alter_table("audit_log_entries") as batch:
        batch.alter_column("description", existing_type=sa.String(1000), nullable=False)
        batch.alter_column("payload", existing_type=sa.Text, nullable=False)
        batch.drop_column("details_hash")
    op.drop_table("audit_log_erased")
    op.drop_table("audit_log_details")
