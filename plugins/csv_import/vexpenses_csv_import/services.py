"""The web side of an import, shared by the upload view and the command.

Store the upload and create the import; show where it stands; remove the
files of ended imports. The worker side is :mod:`.processing`, what the API
shows of an import :mod:`.presenters`. Nothing here queues a task: the
views, commands and tasks (:mod:`.tasks`) do.
"""

import datetime
import logging
import os
import time

from sqlalchemy import select, update

from vexpenses_core.api import APIError, NotFound, RequestTooLarge, ValidationError
from vexpenses_core.db import utcnow
from vexpenses_core.unavailable import MESSAGE as UNAVAILABLE_MESSAGE

from .files import StorageUnavailable, TooLarge
from .interfaces import IProgressStore, IUploadStorage
from .models import COUNT_NAMES, FAILED, FINISHED, PENDING, Import, ImportChunk

log = logging.getLogger(__name__)

UPLOAD_MESSAGE = "Success on store file. We will process in background."
# The message of every 503 (vexpenses_core.unavailable); errors says which part is away.
STORAGE_DOWN = "The file storage cannot be reached. Please try again later."
STORAGE_RETRY_AFTER = 10  # seconds; an outage of the store is rarely shorter


def options(request):
    return request.registry.csv_import_options


def is_binary(head, has_nul):
    """NUL bytes anywhere, or control bytes that text never has, in the first bytes."""
    if has_nul:
        return True
    controls = sum(head.count(bytes([code])) for code in range(32) if code not in (9, 10, 13))
    return controls > 0


def clean_name(filename):
    name = os.path.basename((filename or "").replace("\\", "/"))
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload.csv"


class ImportService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.options = options(request)
        self.storage = request.find_service(IUploadStorage)
        self.progress = request.find_service(IProgressStore)

    # -- web side -------------------------------------------------------------

    def create(self, fileobj, original_name, uploader_id, send_invitations=True,
               requester=None):
        """Store the file and create its import (status 0); the caller queues its planning
        (:func:`.tasks.queue_import`).

        ``requester`` is the user uploading through the API: unless an admin, the
        quotas apply, and invitations only if ``invitations`` is ``everyone``.
        Without one (the command, run by an operator), neither limit applies.
        """
        quotas = self.request.registry.csv_import_quotas
        if requester is not None:
            quotas.charge_upload(requester)
            if not requester.is_admin and self.options["invitations"] != "everyone":
                send_invitations = False
        counter = LineCounter(fileobj)
        try:
            stored = self.storage.save(counter, original_name)
        except TooLarge:
            limit = self.options["max_upload_bytes"]
            raise RequestTooLarge(f"The file may be at most {limit} bytes.") from None
        except StorageUnavailable as exc:
            # The client can do nothing but retry; the operator needs the cause.
            log.error("could not store an upload: %s", exc)
            raise APIError(UNAVAILABLE_MESSAGE, STORAGE_DOWN, status=503,
                           headers={"Retry-After": str(STORAGE_RETRY_AFTER)}) from None
        try:
            if is_binary(stored.head, stored.has_nul):
                raise ValidationError(
                    {"file": ["The file must be a CSV text file, not binary data."]})
            if requester is not None:
                quotas.charge_rows(requester, counter.rows())
        except Exception:
            self.storage.delete(stored.path)
            raise
        record = Import(
            user_id=uploader_id,
            name=stored.name,
            original_name=clean_name(original_name),
            path=stored.path,
            size=stored.size,
            sha256=stored.sha256,
            send_invitations=send_invitations,
            status=PENDING,
        )
        self.db.add(record)
        self.db.flush()
        return record

    def visible(self, raw_id, user):
        """The import, if ``user`` uploaded it or is an admin; else a 404."""
        try:
            import_id = int(raw_id)
        except (TypeError, ValueError):
            raise NotFound() from None
        record = self.db.get(Import, import_id) if 0 < import_id < 2**63 else None
        if (record is None or record.deleted_at is not None
                or not (user.is_admin or record.user_id == user.id)):
            raise NotFound()
        return record

    def remove_old_files(self, limit=500):
        """Remove the files of up to ``limit`` imports that finished more than
        ``file_retention`` seconds ago; return how many. Their rows, counts and
        error rows stay, so the status and the error report still work."""
        cutoff = utcnow() - datetime.timedelta(seconds=self.options["file_retention"])
        rows = self.db.execute(
            select(Import.id, Import.path)
            .where(Import.file_removed_at.is_(None), Import.finished_at <= cutoff,
                   Import.status.in_((FINISHED, FAILED)))
            .order_by(Import.finished_at).limit(limit)
        ).all()
        for _, path in rows:
            self.storage.delete(path)  # a file already gone is fine: delete is idempotent
        if rows:
            self.db.execute(
                update(Import).where(Import.id.in_([import_id for import_id, _ in rows]))
                .values(file_removed_at=utcnow())
                .execution_options(synchronize_session=False))
        return len(rows)

    def soft_delete(self, record):
        record.deleted_at = utcnow()

    def live(self, record):
        """``(counts, percent, eta seconds)``: Redis while running, the database otherwise."""
        if record.status in (FINISHED, FAILED):
            return record.counts(), 100, 0
        if record.status == PENDING:
            return record.counts(), 0, None
        live = self.progress.read(record.id)
        if live is None:
            live = self._rebuild_progress(record)
        counts = {name: live[name] for name in COUNT_NAMES if name != "total"}
        counts["total"] = record.planned
        planned = max(record.planned, 1)
        percent = min(99, live["processed"] * 100 // planned)
        eta = None
        elapsed = time.time() - live["started"]
        if live["processed"] and elapsed > 0:
            eta = round(elapsed * max(planned - live["processed"], 0) / live["processed"])
        return counts, percent, eta

    def _rebuild_progress(self, record):
        # One query: the counts and the checkpoints must come from one snapshot.
        chunks = self.db.execute(
            select(ImportChunk.chunk_index, ImportChunk.next_row,
                   *(getattr(ImportChunk, name) for name in COUNT_NAMES))
            .where(ImportChunk.import_id == record.id)
        ).all()
        counts = {name: sum(row[2 + i] for row in chunks)
                  for i, name in enumerate(COUNT_NAMES)}
        checkpoints = {row.chunk_index: row.next_row for row in chunks}
        started = record.started_at.timestamp() if record.started_at else time.time()
        self.progress.seed(record.id, counts, record.planned, started, checkpoints)
        log.info("rebuilt the progress of import %s from the database", record.id)
        return {**counts, "planned": record.planned, "started": started}


class LineCounter:
    """A file object that counts the line ends read through it: LF, CRLF or a lone CR.

    The csv module ends a record at any of them, so every line but the
    header is counted as a row: at least as many as the import will read.
    """

    def __init__(self, fileobj):
        self.fileobj = fileobj
        self.ends = 0
        self.last = b""

    def read(self, size=-1):
        block = self.fileobj.read(size)
        if block:
            self.ends += block.count(b"\n") + block.count(b"\r") - block.count(b"\r\n")
            if self.last == b"\r" and block[:1] == b"\n":  # a CRLF across two blocks
                self.ends -= 1
            self.last = block[-1:]
        return block

    def rows(self):
        lines = self.ends + (1 if self.last not in (b"", b"\n", b"\r") else 0)
        return max(lines - 1, 0)
