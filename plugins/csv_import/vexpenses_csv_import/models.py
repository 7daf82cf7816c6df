"""The plugin's tables: imports, their chunks, and their rejected rows."""

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from vexpenses_core.db import Base, UTCDateTime, utcnow
from vexpenses_core.models import BigId

PENDING, FINISHED, FAILED, RUNNING = 0, 1, 2, 3

COUNT_NAMES = ("total", "processed", "imported", "rejected", "duplicates")


class Import(Base):
    __tablename__ = "imports"
    __table_args__ = (Index("ix_imports_file_removed_at", "file_removed_at", "finished_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    name: Mapped[str] = mapped_column(String(255))
    original_name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    send_invitations: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[int] = mapped_column(SmallInteger, default=PENDING)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # JSON {reason: rows}, filled when the import ends.
    error_summary: Mapped[str | None] = mapped_column(Text, default=None)
    delimiter: Mapped[str] = mapped_column(String(1), default=",")
    # Records the planner found (blank lines included): the progress denominator.
    planned: Mapped[int] = mapped_column(BigInteger, default=0)
    chunks_total: Mapped[int] = mapped_column(Integer, default=0)
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    # Chunks whose task was queued: parallel_chunks at planning, then one more
    # each time a chunk is done, so that an import runs that many at once.
    chunks_queued: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    started_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    finished_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    # When the file was removed from storage, its retention over.
    file_removed_at: Mapped[datetime.datetime | None] = mapped_column(
        UTCDateTime, default=None)
    # Rows in import_errors, at most max_error_rows; the counts above stay exact.
    error_rows: Mapped[int] = mapped_column(BigInteger, default=0)

    def counts(self):
        return {name: getattr(self, name) for name in COUNT_NAMES}


class ImportChunk(Base):
    """A byte range of the file, processed by one task, checkpointed per batch.

    ``next_row`` says where the next batch starts; it moves in the same
    transaction as that batch's inserts and counts, so a redelivered task
    resumes exactly where the last commit left off.
    """

    __tablename__ = "import_chunks"

    import_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start: Mapped[int] = mapped_column(BigInteger)
    end: Mapped[int] = mapped_column(BigInteger)
    first_row: Mapped[int] = mapped_column(BigInteger)
    next_row: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    processed: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(BigInteger, default=0)
    rejected: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    summary: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[datetime.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )


class ImportRowError(Base):
    """A rejected row: its number, its original fields and the reasons, for the report."""

    __tablename__ = "import_errors"
    __table_args__ = (UniqueConstraint("import_id", "row_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id", ondelete="CASCADE"))
    row_number: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))  # "invalid" or "duplicate"
    fields: Mapped[str] = mapped_column(Text)  # JSON list of the original fields
    errors: Mapped[str] = mapped_column(Text)  # JSON {field: [messages]}
