"""The imports a user made, for their data export (``vexpenses_export_user``).

Each import as the status API shows it from the stored row: the rows it
created are other people's accounts, and its rejected rows their data, so
neither is part of the uploader's export.
"""

import json

from sqlalchemy import select

from .models import Import
from .presenters import _import


def export_dict(record):
    return _import(
        record, "error", "deleted_at", "started_at", "finished_at", "send_invitations",
        "error_rows", "file_removed_at", "size", "sha256", **record.counts(),
        error_summary=json.loads(record.error_summary) if record.error_summary else None)


def imports_of(dbsession, user, limit):
    """``{"imports": [...]}``: at most ``limit + 1`` of ``user``'s imports, newest first."""
    rows = dbsession.scalars(
        select(Import).where(Import.user_id == user.id)
        .order_by(Import.id.desc()).limit(limit + 1))
    return {"imports": [export_dict(record) for record in rows]}
