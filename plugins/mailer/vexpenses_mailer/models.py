import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vexpenses_core.db import Base, UTCDateTime, utcnow
from vexpenses_core.models import BigId

SENT = "sent"
FAILED = "failed"
# Committed before the message goes to the server: a row still ``sending``
# is being sent, or its worker died mid-send (see ``claimed_at``).
SENDING = "sending"


class MailDelivery(Base):
    """One e-mail and what became of it. Never its body: reset links are secrets."""

    __tablename__ = "mail_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default=SENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    # What makes a redelivered task a no-op: one row per message ever meant.
    dedupe_key: Mapped[str] = mapped_column(String(100), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(255), default=None)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
    # When the current attempt began: an old claim on a ``sending`` row means
    # its worker died, maybe after the server took the message.
    claimed_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
