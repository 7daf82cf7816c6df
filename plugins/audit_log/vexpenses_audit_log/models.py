"""The audit log's tables.

``audit_log_entries`` holds one row per recorded hook call. Rows are only
ever appended, by :class:`vexpenses_audit_log.chain.ChainWriter`; each
carries the hash of the row before it. It holds no personal data: what the
row says about people (the description, the arguments, the client's address
and user agent) lives beside it in ``audit_log_details``, which the chain
covers by a digest only (``details_hash``), so that the details can be
erased (the LGPD right to erasure) and the chain still verifies.

``audit_log_erased`` holds a tombstone per erased user: records still in
flight when the user was erased (buffered in a process, waiting in Redis)
land without their details. ``audit_log_chain`` holds one row, the chain's
head (last id and hash) and anchor (the first row kept after a prune, and
the hash it must link to).

``user_id`` and ``subject_id`` have no foreign key on purpose: deleting a
user must not rewrite audit rows (``ON DELETE SET NULL`` would break their
hashes).
"""

import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from vexpenses_core.db import Base, UTCDateTime
from vexpenses_core.models import BigId


class AuditLogDetails(Base):
    __tablename__ = "audit_log_details"

    # The entry's id. No foreign key, as for user_id: prune deletes both itself.
    entry_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # The user the row is about besides whoever acted (the hook's ``user``):
    # the target of an admin's action, the account of a login.
    subject_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    # Random, per row: without it the digest of an erased "ana@example.com"
    # could be confirmed by guessing.
    nonce: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(String(1000), default=None)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)
    payload: Mapped[str | None] = mapped_column(Text, default=None)
    # Set when the personal columns above were emptied on purpose.
    erased_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)


class AuditLogEntry(Base):
    __tablename__ = "audit_log_entries"

    # Assigned by the writer under the chain lock, so the hash can cover it.
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # Made when the hook was called; makes a replayed batch harmless.
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    hook: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int | None] = mapped_column(BigId, index=True, default=None)
    request_id: Mapped[str | None] = mapped_column(String(128), index=True, default=None)
    # sha256 (HMAC with the chain key) of the details row's nonce and contents.
    details_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    details: Mapped[AuditLogDetails | None] = relationship(
        lazy="joined", viewonly=True,
        primaryjoin="AuditLogDetails.entry_id == AuditLogEntry.id",
        foreign_keys="AuditLogDetails.entry_id")

    # What the API shows; None when the details were erased (or are missing).
    @property
    def description(self):
        return self.details.description if self.details is not None else None

    @property
    def ip_address(self):
        return self.details.ip_address if self.details is not None else None

    @property
    def user_agent(self):
        return self.details.user_agent if self.details is not None else None

    @property
    def payload(self):
        return self.details.payload if self.details is not None else None

    @property
    def erased_at(self):
        return self.details.erased_at if self.details is not None else None


class AuditLogErased(Base):
    __tablename__ = "audit_log_erased"

    user_id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    # Keyed digest of the address, to catch in-flight rows that quote it
    # without the id (a failed login); cleared after a few days.
    email_digest: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    # Records made after it are a new account's (SQLite may reuse the id).
    erased_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)


class AuditLogChain(Base):
    __tablename__ = "audit_log_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_id: Mapped[int] = mapped_column(BigId)
    last_hash: Mapped[str] = mapped_column(String(64))
    anchor_id: Mapped[int] = mapped_column(BigId)
    anchor_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
