"""The e-mails sent to a user, for their data export (``vexpenses_export_user``).

What the delivery rows hold: kind, address, subject, status and times. Never
a body or a link (they are not stored: reset links are secrets), nor the
``dedupe_key``, which is internal.
"""

from sqlalchemy import select

from .models import MailDelivery

FIELDS = ("id", "kind", "recipient", "subject", "status", "attempts", "last_error",
          "message_id", "created_at", "sent_at")


def deliveries_of(dbsession, user, limit):
    """``{"mail_deliveries": [...]}``: at most ``limit + 1`` rows, newest first."""
    rows = dbsession.scalars(
        select(MailDelivery).where(MailDelivery.user_id == user.id)
        .order_by(MailDelivery.id.desc()).limit(limit + 1))
    return {"mail_deliveries": [{name: getattr(row, name) for name in FIELDS} for row in rows]}
