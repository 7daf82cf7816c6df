"""The import itself, shared by the upload view, the tasks and the command.

Web side: store the upload and create the import. Worker side: plan
(file-level checks, chunks), then process each chunk in batches, each batch
one transaction that also moves the chunk's checkpoint; the last batch of
the last chunk finishes the import, exactly once. The service never queues:
it returns what should happen next, and the tasks, views and commands
(:mod:`.tasks`) queue it.
"""

import csv
import dataclasses
import datetime
import json
import logging
import os
import tempfile
import time

from sqlalchemy import func, insert, select, update

from vexpenses_core.accounts.services import UserService
from vexpenses_core.api import NotFound, RequestTooLarge, ValidationError
from vexpenses_core.db import utcnow
from vexpenses_core.transactions import after_commit, run_in_transaction

from . import csvfile
from .interfaces import IUploadStorage
from .models import (
    COUNT_NAMES,
    FAILED,
    FINISHED,
    PENDING,
    RUNNING,
    Import,
    ImportChunk,
    ImportRowError,
)
from .progress import IProgressStore
from .storage import TooLarge
from .writers import user_writer

log = logging.getLogger(__name__)

UPLOAD_MESSAGE = "Success on store file. We will process in background."
DUPLICATE = {"email": ["The email has already been taken."]}
# A batch that meets a deadlock or lock-wait timeout is run again, this often in all.
BATCH_ATTEMPTS = 5
# A cell that spreadsheet software would run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Fields of a rejected row are kept for the report, cut to this length,
# and no more than ROW_KEEP characters of a row in all (an empty field counts 1).
FIELD_KEEP = 1000
ROW_KEEP = 4000


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


def neutralise(cell):
    """Prefix formula-looking cells with a quote, as OWASP advises for CSV exports."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


class ImportService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.options = options(request)
        self.storage = request.find_service(IUploadStorage)
        self.progress = request.find_service(IProgressStore)
        self.hook = request.pm.hook

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
        sums = self.db.execute(
            select(*(func.coalesce(func.sum(getattr(ImportChunk, name)), 0)
                     for name in COUNT_NAMES))
            .where(ImportChunk.import_id == record.id)
        ).one()
        counts = dict(zip(COUNT_NAMES, (int(value) for value in sums), strict=True))
        started = record.started_at.timestamp() if record.started_at else time.time()
        self.progress.seed(record.id, counts, record.planned, started)
        log.info("rebuilt the progress of import %s from the database", record.id)
        return {**counts, "planned": record.planned, "started": started}

    def status_dict(self, record):
        counts, percent, eta = self.live(record)
        data = self.base_dict(record)
        data.update(
            error=record.error,
            deleted_at=record.deleted_at,
            progress=percent,
            eta_seconds=eta,
            started_at=record.started_at,
            finished_at=record.finished_at,
            send_invitations=record.send_invitations,
            error_rows=record.error_rows,
            file_removed_at=record.file_removed_at,
            size=record.size,
            sha256=record.sha256,
            **counts,
        )
        data["error_summary"] = json.loads(record.error_summary) if record.error_summary else None
        data["error_report"] = (
            self.request.route_path("csv_import.errors", id=record.id)
            if counts["rejected"] or counts["duplicates"] else None
        )
        return data

    @staticmethod
    def base_dict(record):
        return {
            "id": record.id,
            "name": record.name,
            "original_name": record.original_name,
            "path": record.path,
            "status": record.status,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    def error_report(self, record):
        """The rejected rows as a CSV file object (spooled, so it never fills memory)."""
        out = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")
        text = _TextSink(out)
        writer = csv.writer(text, delimiter=record.delimiter or ",", lineterminator="\r\n")
        text.write("\ufeff")  # Excel reads the file as UTF-8 only with a BOM
        writer.writerow(["Row", *csvfile.HEADER, "Reasons"])
        rows = self.db.execute(
            select(ImportRowError.row_number, ImportRowError.fields, ImportRowError.errors)
            .where(ImportRowError.import_id == record.id)
            .order_by(ImportRowError.row_number)
            .execution_options(yield_per=1000)
        )
        for row_number, fields, errors in rows:
            fields = json.loads(fields)
            fields = fields + [""] * (3 - len(fields))
            reasons = "; ".join(message for messages in json.loads(errors).values()
                                for message in messages)
            writer.writerow([row_number, *(neutralise(field) for field in fields[:3]),
                             neutralise(reasons), *(neutralise(f) for f in fields[3:])])
        out.seek(0)
        return out

    # -- worker side: planning ------------------------------------------------------

    def plan(self, import_id):
        """Check the file and split it into chunks. Safe to run twice.

        Returns a :class:`Planned`: the chunks to process, and whether the
        import failed already (its file may then be removed).
        """
        record = self.db.scalar(select(Import).where(Import.id == import_id).with_for_update())
        if record is None:
            return Planned()
        if record.status == RUNNING:
            # Delivered again after it committed: the chunk tasks may not have
            # been sent. Sending them twice is harmless; each is idempotent.
            return Planned(chunks=list(self.db.scalars(select(ImportChunk.chunk_index).where(
                ImportChunk.import_id == import_id, ImportChunk.done.is_(False)))))
        if record.status != PENDING:
            return Planned()
        try:
            with self.storage.open(record.path) as fileobj:
                plan = csvfile.plan_file(fileobj, self.options["chunk_bytes"],
                                         self.options["max_line_bytes"])
        except csvfile.FileError as exc:
            self._fail(record, exc.message)
            return Planned(finished=True)
        except FileNotFoundError:
            self._fail(record, "The uploaded file is missing from storage.")
            return Planned(finished=True)
        now = utcnow()
        self.db.execute(insert(ImportChunk), [
            {"import_id": import_id, "chunk_index": chunk.index, "start": chunk.start,
             "end": chunk.end, "first_row": chunk.first_row, "next_row": chunk.first_row,
             "done": False, "summary": "{}", "updated_at": now,
             **dict.fromkeys(COUNT_NAMES, 0)}
            for chunk in plan.chunks
        ])
        record.status = RUNNING
        record.delimiter = plan.delimiter
        record.planned = plan.records
        record.chunks_total = len(plan.chunks)
        record.started_at = now
        self.db.flush()
        after_commit(self.request, self.progress.start, import_id, plan.records,
                     now.timestamp())
        self.hook.vexpenses_import_started(request=self.request, import_id=import_id,
                                           uploader_id=record.user_id)
        return Planned(chunks=[chunk.index for chunk in plan.chunks])

    def _fail(self, record, message):
        record.status = FAILED
        record.error = message
        record.finished_at = utcnow()
        self.db.flush()
        self.hook.vexpenses_import_finished(
            request=self.request, import_id=record.id, uploader_id=record.user_id,
            status=FAILED, counts=record.counts(), send_invitations=record.send_invitations)

    # -- worker side: chunks ------------------------------------------------------

    def process_chunk(self, import_id, chunk_index):
        """Process a chunk batch by batch, from its checkpoint. Idempotent.

        Returns True when this chunk ended the import (finished or failed it),
        so that the files of ended imports may be removed.

        Runs with no transaction open (its task has ``own_transactions``).
        Each batch is its own transaction, which also moves the checkpoint:
        a worker killed mid-chunk loses at most its uncommitted batch, and the
        redelivered task resumes after the last commit. A deadlock or
        lock-wait timeout retries only the batch.
        """
        tm = self.request.tm
        job = run_in_transaction(tm, lambda: self._chunk_job(import_id, chunk_index), log=log)
        if job is None:
            return False
        try:
            with self.storage.open(job.path) as fileobj:
                fileobj.seek(job.start)
                data = fileobj.read(job.end - job.start)
        except FileNotFoundError:
            return run_in_transaction(tm, lambda: self._fail_running(
                import_id, "The uploaded file disappeared from storage."), log=log)
        reader = csvfile.ChunkReader(data, job.delimiter, job.first_row)
        while True:
            more, ended = run_in_transaction(tm, lambda: self._batch(job, reader),
                                             attempts=BATCH_ATTEMPTS, log=log)
            if not more:
                return ended
            if self.options["batch_delay"]:
                time.sleep(self.options["batch_delay"])

    def _chunk_job(self, import_id, chunk_index):
        """What a chunk's batches need to know, or None when there is nothing to do."""
        record = self.db.get(Import, import_id)
        chunk = self.db.get(ImportChunk, (import_id, chunk_index))
        if record is None or chunk is None or record.status != RUNNING or chunk.done:
            return None
        return _ChunkJob(import_id, chunk_index, record.send_invitations, record.user_id,
                         record.path, record.delimiter, chunk.start, chunk.end,
                         chunk.first_row)

    def _batch(self, job, reader):
        """One batch in the current transaction.

        Returns ``(more, ended)``: whether the chunk has more rows, and whether
        this batch ended the import.
        """
        chunk = self.db.scalar(
            select(ImportChunk)
            .where(ImportChunk.import_id == job.import_id,
                   ImportChunk.chunk_index == job.chunk_index)
            .with_for_update()  # a second delivery of this chunk waits here, then resumes
        )
        if chunk is None or chunk.done:
            return False, False
        records, next_row, finished = reader.read(chunk.next_row, self.options["batch_rows"])
        user_ids, rejected = self._write_rows(job.import_id, records)
        duplicates = sum(1 for row in rejected if row[1] == "duplicate")
        counts = {"total": len(records), "processed": len(records), "imported": len(user_ids),
                  "rejected": len(rejected) - duplicates, "duplicates": duplicates}
        for name, value in counts.items():
            setattr(chunk, name, getattr(chunk, name) + value)
        if rejected:
            chunk.summary = _merge_summary(chunk.summary, rejected)
        chunk.next_row, chunk.done = next_row, finished
        self.db.flush()
        if user_ids:
            self.hook.vexpenses_users_imported(
                request=self.request, import_id=job.import_id, user_ids=user_ids,
                send_invitations=job.send_invitations)
        after_commit(self.request, self.progress.add, job.import_id, counts)
        ended = False
        if finished:
            self.hook.vexpenses_import_chunk_done(
                request=self.request, import_id=job.import_id, chunk_index=job.chunk_index,
                counts={name: getattr(chunk, name) for name in COUNT_NAMES})
            ended = self._chunk_done(job.import_id, job.uploader_id, job.send_invitations)
        return not finished, ended

    def _write_rows(self, import_id, records):
        """Validate and insert one batch; return (new user ids, rejected rows)."""
        today = csvfile.today_utc()
        good, rejected = {}, []
        for row_number, fields in records:
            values, problems = csvfile.check_row(fields, today)
            if problems:
                rejected.append((row_number, "invalid", fields, problems))
            elif values[1] in good:
                rejected.append((row_number, "duplicate", fields, DUPLICATE))
            else:
                good[values[1]] = (row_number, fields, values)
        user_ids = []
        if good:
            # One statement; the unique index decides what is a duplicate, also
            # against another chunk inserting the same e-mail right now. Sorted,
            # so that parallel batches take their index locks in one order.
            inserted = user_writer(self.db).insert([good[email][2] for email in sorted(good)])
            for row_number, fields, values in good.values():
                if values[1] not in inserted:
                    rejected.append((row_number, "duplicate", fields, DUPLICATE))
            user_ids = sorted(inserted.values())
            if user_ids:
                UserService(self.request).users_changed()
        if rejected:
            rejected.sort(key=lambda row: row[0])
            keep = self._error_room(import_id, len(rejected))
            if keep:
                self.db.execute(insert(ImportRowError), [
                    {"import_id": import_id, "row_number": row_number, "kind": kind,
                     "fields": json.dumps(kept_fields(fields), ensure_ascii=False),
                     "errors": json.dumps(problems, ensure_ascii=False)}
                    for row_number, kind, fields, problems in rejected[:keep]
                ])
        return user_ids, rejected

    def _error_room(self, import_id, wanted):
        """How many of ``wanted`` rejected rows this batch may store; counts them.

        The import's ``error_rows`` is read and moved under the import row's
        lock, held until the batch commits, so parallel chunks share the bound
        exactly. Once it is reached, which is final, a plain read skips the lock.
        """
        limit = self.options["max_error_rows"]
        stored = select(Import.error_rows).where(Import.id == import_id)
        if self.db.scalar(stored) >= limit:
            return 0
        keep = min(wanted, max(limit - self.db.scalar(stored.with_for_update()), 0))
        if keep:
            self.db.execute(
                update(Import).where(Import.id == import_id)
                .values(error_rows=Import.error_rows + keep)
                .execution_options(synchronize_session=False))
        return keep

    def _chunk_done(self, import_id, uploader_id, invitations):
        """Count the chunk as done; the last one to commit finishes the import (True)."""
        self.db.execute(
            update(Import).where(Import.id == import_id)
            .values(chunks_done=Import.chunks_done + 1)
            .execution_options(synchronize_session=False))
        done, expected = self.db.execute(
            select(Import.chunks_done, Import.chunks_total)
            .where(Import.id == import_id).with_for_update()).one()
        if done < expected:
            return False
        # Locking reads: they see every chunk's last commit, whatever our snapshot.
        rows = self.db.execute(
            select(ImportChunk).where(ImportChunk.import_id == import_id)
            .with_for_update()).scalars().all()
        counts = {name: sum(getattr(row, name) for row in rows) for name in COUNT_NAMES}
        summary = {}
        for row in rows:
            for reason, count in json.loads(row.summary).items():
                summary[reason] = summary.get(reason, 0) + count
        status, error = FINISHED, None
        if counts["total"] == 0:
            status, error = FAILED, "The file has a header but no data rows."
        elif counts["rejected"] or counts["duplicates"]:
            status = FAILED
            limit = self.options["max_error_rows"]
            listed = ("each rejected row" if counts["rejected"] + counts["duplicates"] <= limit
                      else f"the first {limit} of them")
            error = (f"{counts['rejected']} rows were rejected and {counts['duplicates']} "
                     f"were duplicates; {counts['imported']} users were imported. "
                     f"The error report lists {listed}.")
        finished = self.db.execute(
            update(Import).where(Import.id == import_id, Import.status == RUNNING)
            .values(status=status, error=error, finished_at=utcnow(),
                    error_summary=json.dumps(summary) if summary else None, **counts)
            .execution_options(synchronize_session=False))
        if finished.rowcount != 1:
            return False
        after_commit(self.request, self.progress.drop, import_id)
        self.hook.vexpenses_import_finished(
            request=self.request, import_id=import_id, uploader_id=uploader_id,
            status=status, counts=counts, send_invitations=invitations)
        return True

    def _fail_running(self, import_id, message):
        """Fail a running import; True when this call failed it."""
        record = self.db.scalar(select(Import).where(Import.id == import_id).with_for_update())
        if record is not None and record.status == RUNNING:
            self._fail(record, message)
            return True
        return False


@dataclasses.dataclass(frozen=True)
class Planned:
    """What planning leaves to do: the chunks to process, and whether the import
    ended already (failed at planning), so that its file may be removed."""

    chunks: list = dataclasses.field(default_factory=list)
    finished: bool = False


@dataclasses.dataclass(frozen=True)
class _ChunkJob:
    import_id: int
    chunk_index: int
    send_invitations: bool
    uploader_id: int | None
    path: str
    delimiter: str
    start: int
    end: int
    first_row: int


def kept_fields(fields):
    """A rejected row's fields as stored for the report: bounded, whatever the row."""
    kept, room = [], ROW_KEEP
    for field in fields or []:
        if room <= 0:
            break
        kept.append(field[:min(FIELD_KEEP, room)])
        room -= max(len(kept[-1]), 1)
    return kept


def _merge_summary(raw, rejected):
    summary = json.loads(raw)
    for _, kind, _, problems in rejected:
        reasons = ["duplicate"] if kind == "duplicate" else list(problems)
        for reason in reasons:
            summary[reason] = summary.get(reason, 0) + 1
    return json.dumps(summary, sort_keys=True)


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


class _TextSink:
    """A text view of a binary file for csv.writer, encoding to UTF-8."""

    def __init__(self, out):
        self.out = out

    def write(self, text):
        self.out.write(text.encode("utf-8"))
