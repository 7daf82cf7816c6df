"""The core's tables."""

import datetime

from sqlalchemy import BigInteger, Boolean, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .db import Base, UTCDateTime, utcnow

# BIGINT on MySQL, but SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    # Stored normalised (lower case), so the unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(255), unique=True)
    # Null for imported users who have not chosen a password yet.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    birth_date: Mapped[datetime.date | None] = mapped_column(Date, default=None)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    def __repr__(self):
        return f"<User {self.id}>"
