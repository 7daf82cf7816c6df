"""The audit rows about a user, for their data export (``vexpenses_export_user``).

The rows whose ``user_id`` is theirs (what they did, and what was done to
their account on routes without a token), each as ``GET /api/v1/log/{id}``
shows it. Rows still buffered by the pipeline are written within seconds
and appear in the next export.
"""

from sqlalchemy import select

from .models import AuditLogEntry
from .services import log_detail


def rows_of(dbsession, user, limit):
    """``{"audit_log": [...]}``: at most ``limit + 1`` rows about ``user``, newest first."""
    rows = dbsession.scalars(
        select(AuditLogEntry).where(AuditLogEntry.user_id == user.id)
        .order_by(AuditLogEntry.id.desc()).limit(limit + 1))
    return {"audit_log": [log_detail(row, user) for row in rows]}
