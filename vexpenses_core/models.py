"""The core's tables."""

import datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow

# BIGINT on MySQL, but SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

# An address in its canonical form (accounts.validation.normalize_email),
# compared byte for byte: MariaDB's default collations would make "josé",
# "jose" and "ｊose" one address. SQLite compares bytes already.
EmailAddress = String(255).with_variant(
    mysql.VARCHAR(255, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    # Stored canonical (normalize_email: NFC, lower case, IDNA domain) and
    # unique byte for byte: one address, one identity.
    email: Mapped[str] = mapped_column(EmailAddress, unique=True)
    # Null for imported users who have not chosen a password yet.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    birth_date: Mapped[datetime.date | None] = mapped_column(Date, default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the user proved the address: a verification link, a confirmed
    # change of address, or a password set through an e-mailed link.
    email_verified_at: Mapped[datetime.datetime | None] = mapped_column(
        UTCDateTime, default=None)
    # Set by an admin: no login, no token, no reset until cleared.
    disabled_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    def __repr__(self):
        return f"<User {self.id}>"


class AuthSession(Base):
    """A login: one per device, the family of its refresh tokens.

    Access tokens carry its id (``sid``); revoking it ends them at once.
    """

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(255), default=None)


class RefreshToken(Base):
    """An opaque refresh token, stored only as its SHA-256."""

    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(
        String(32), ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
    # Set when rotated; presenting it again afterwards is reuse.
    used_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)


# What an e-mailed link's token is for.
RESET = "reset"  # set a new password (also the import invitations)
VERIFY = "verify"  # prove the account's address
EMAIL_CHANGE = "email_change"  # move the account to new_email


class AccountToken(Base):
    """A single-use token behind an e-mailed link, stored only as its SHA-256.

    The table keeps the name it had when it held only password resets.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(16), default=RESET, server_default=RESET)
    # For EMAIL_CHANGE: the address the account moves to, canonical.
    new_email: Mapped[str | None] = mapped_column(EmailAddress, default=None)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)


PasswordReset = AccountToken  # its name before it held other links


class TaskOutbox(Base):
    """A task message written in the transaction that queues it.

    With the Redis broker, ``request.enqueue`` adds a row here; the message is
    sent after the commit and the row deleted. A row left behind (Redis was
    down, or the process died in between) is sent by the worker supervisor.
    """

    __tablename__ = "task_outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(255))
    # JSON: {"args": [...], "kwargs": {...}, "request_id": "..."}
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow,
                                                          index=True)
