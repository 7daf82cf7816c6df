"""The audit log's tables.

``audit_log_entries`` holds one row per recorded hook call. Rows are only
ever appended, by :class:`vexpenses_audit_log.chain.ChainWriter`; each
carries the hash of the row before it. ``audit_log_chain`` holds one row,
the chain's head (last id and hash) and anchor (the first row kept after a
prune, and the hash it must link to).

``user_id`` has no foreign key on purpose: deleting a user must not rewrite
audit rows (``ON DELETE SET NULL`` would break their hashes).
"""

import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vexpenses_core.db import Base, UTCDateTime
from vexpenses_core.models import BigId


class AuditLogEntry(Base):
    __tablename__ = "audit_log_entries"

    # Assigned by the writer under the chain lock, so the hash can cover it.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # Made when the hook was called; makes a replayed batch harmless.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    hook: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(String(1000))
    user_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditLogChain(Base):
    __tablename__ = "audit_log_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(BigId)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
