"""The worker side of an import: plan it, then process each chunk in batches.

Planning checks the file and splits it into chunks. Each batch of a chunk
is one transaction that also moves the chunk's checkpoint; the last batch
of the last chunk finishes the import, exactly once. Nothing here queues a
task: the tasks (:mod:`.tasks`) queue what these methods return.
"""

import contextlib
import dataclasses
import json
import logging
import time

from sqlalchemy import Engine, insert, select, update

from vexpenses_core.accounts.users import UserService
from vexpenses_core.db import utcnow
from vexpenses_core.transactions import after_commit, run_in_transaction

from . import csvfile
from .interfaces import IProgressStore, IUploadStorage
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
from .services import options
from .writers import infile_engine, user_writer

log = logging.getLogger(__name__)

DUPLICATE = {"email": ["The email has already been taken."]}
# A batch that meets a deadlock or lock-wait timeout is run again, this often in all.
# More than transactions.ATTEMPTS: parallel chunks of one import deadlock each other often.
BATCH_ATTEMPTS = 5
# Fields of a rejected row are kept for the report, cut to this length,
# and no more than ROW_KEEP characters of a row in all (an empty field counts 1).
FIELD_KEEP = 1000
ROW_KEEP = 4000


class ImportProcessor:
    """The worker side of an import: planning it, and processing its chunks."""

    def __init__(self, request):
        self.request = request
        self.hook = request.pm.hook
        self.db = request.dbsession
        self.options = options(request)
        self.storage = request.find_service(IUploadStorage)
        self.progress = request.find_service(IProgressStore)

    # -- planning ------------------------------------------------------

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
                ImportChunk.import_id == import_id, ImportChunk.done.is_(False),
                ImportChunk.chunk_index < record.chunks_queued))))
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
        # The rest are queued one by one, as chunks finish (_chunk_done).
        record.chunks_queued = min(self.options["parallel_chunks"] or len(plan.chunks),
                                   len(plan.chunks))
        record.started_at = now
        self.db.flush()
        after_commit(self.request, self.progress.start, import_id, plan.records,
                     now.timestamp())
        self.hook.vexpenses_import_started(request=self.request, import_id=import_id,
                                           uploader_id=record.user_id)
        return Planned(chunks=[chunk.index for chunk in plan.chunks[:record.chunks_queued]])

    def _fail(self, record, message):
        record.status = FAILED
        record.error = message
        record.finished_at = utcnow()
        self.db.flush()
        self.hook.vexpenses_import_finished(
            request=self.request, import_id=record.id, uploader_id=record.user_id,
            status=FAILED, counts=record.counts(), send_invitations=record.send_invitations)

    # -- chunks ------------------------------------------------------

    def process_chunk(self, import_id, chunk_index, queue_chunk):
        """Process a chunk batch by batch, from its checkpoint. Idempotent.

        Returns True when this chunk ended the import (finished or failed it),
        so that the files of ended imports may be removed.

        ``queue_chunk(index)`` queues the task of the import's next chunk. It
        is called in the transaction that finishes this chunk, so the next one
        is sent when, and only when, that commits: a worker killed before the
        commit leaves the redelivered task to do it. That is how at most
        ``parallel_chunks`` of an import run at once.

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
        with self._infile_connection():
            while True:
                more, ended = run_in_transaction(
                    tm, lambda: self._batch(job, reader, queue_chunk),
                    attempts=BATCH_ATTEMPTS, log=log)
                if not more:
                    return ended
                if self.options["batch_delay"]:
                    time.sleep(self.options["batch_delay"])

    @contextlib.contextmanager
    def _infile_connection(self):
        """Run the chunk's batches on a connection of their own that may LOAD DATA LOCAL.

        Every statement of a batch (users, checkpoint, counts, and what the
        hooks write through ``request.dbsession``) goes through it, so a batch
        stays one transaction. Without such a connection (SQLite, or a server
        with ``local_infile`` OFF) the session's engine is used as it is.
        """
        bind = self.db.bind
        # A session bound to a connection (a caller's transaction) keeps it.
        engine = infile_engine(bind) if isinstance(bind, Engine) else None
        if engine is None:
            yield
            return
        with engine.connect() as connection:
            self.db.bind = connection
            try:
                yield
            finally:
                self.db.bind = bind

    def _chunk_job(self, import_id, chunk_index):
        """What a chunk's batches need to know, or None when there is nothing to do."""
        record = self.db.get(Import, import_id)
        chunk = self.db.get(ImportChunk, (import_id, chunk_index))
        if record is None or chunk is None or record.status != RUNNING or chunk.done:
            return None
        return _ChunkJob(import_id, chunk_index, record.send_invitations, record.user_id,
                         record.path, record.delimiter, chunk.start, chunk.end,
                         chunk.first_row)

    def _batch(self, job, reader, queue_chunk):
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
        first, rows, next_row, finished = reader.read_rows(chunk.next_row,
                                                           self.options["batch_rows"])
        total, user_ids, rejected = self._write_rows(job.import_id, first, rows)
        duplicates = sum(1 for row in rejected if row[1] == "duplicate")
        counts = {"total": total, "processed": total, "imported": len(user_ids),
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
        after_commit(self.request, self.progress.add, job.import_id, counts,
                     (job.chunk_index, next_row))
        ended = False
        if finished:
            self.hook.vexpenses_import_chunk_done(
                request=self.request, import_id=job.import_id, chunk_index=job.chunk_index,
                counts={name: getattr(chunk, name) for name in COUNT_NAMES})
            ended = self._chunk_done(job.import_id, job.uploader_id, job.send_invitations,
                                     queue_chunk)
        return not finished, ended

    def _write_rows(self, import_id, first, rows):
        """Validate and insert the rows read from row ``first`` on.

        Returns (the records counted, new user ids, rejected rows). One
        statement inserts the batch; the unique index decides what is a
        duplicate, also against another chunk inserting the same e-mail
        right now.
        """
        today = csvfile.today_utc()
        columns = csvfile.check_batch(rows, today)
        if columns is not None:  # every row good, the common case: no Python step per row
            inserted = user_writer(self.db).insert_columns(*columns)
            emails = columns[1]
            rejected = [] if len(inserted) == len(rows) else [
                (first + i, "duplicate", fields, DUPLICATE)
                for i, fields in enumerate(rows) if emails[i] not in inserted]
            total = len(rows)
        else:
            total, inserted, rejected = self._write_records(csvfile.records(first, rows), today)
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
        return total, user_ids, rejected

    def _write_records(self, records, today):
        """Row by row: (the records counted, ``{email: id}`` inserted, rejected rows)."""
        good, rejected = {}, []
        for row_number, fields in records:
            values, problems = csvfile.check_row(fields, today)
            if problems:
                rejected.append((row_number, "invalid", fields, problems))
            elif values[1] in good:
                rejected.append((row_number, "duplicate", fields, DUPLICATE))
            else:
                good[values[1]] = (row_number, fields, values)
        inserted = {}
        if good:
            # Sorted, so that parallel batches take their index locks in one order.
            inserted = user_writer(self.db).insert([good[email][2] for email in sorted(good)])
            for row_number, fields, values in good.values():
                if values[1] not in inserted:
                    rejected.append((row_number, "duplicate", fields, DUPLICATE))
        return len(records), inserted, rejected

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

    def _chunk_done(self, import_id, uploader_id, invitations, queue_chunk):
        """Count the chunk as done and queue the next one; the last chunk to
        commit finishes the import (True)."""
        self.db.execute(
            update(Import).where(Import.id == import_id)
            .values(chunks_done=Import.chunks_done + 1)
            .execution_options(synchronize_session=False))
        done, expected, queued = self.db.execute(
            select(Import.chunks_done, Import.chunks_total, Import.chunks_queued)
            .where(Import.id == import_id).with_for_update()).one()
        if queued < expected:  # under the import row's lock: each index is queued once
            self.db.execute(
                update(Import).where(Import.id == import_id)
                .values(chunks_queued=queued + 1)
                .execution_options(synchronize_session=False))
            queue_chunk(queued)
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
            error = outcome(counts, self.options["max_error_rows"])
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


def _count(n, one, other, zero=None):
    if n == 0 and zero:
        return zero
    return one if n == 1 else other.format(n=n)


def outcome(counts, limit):
    """The ``error`` of an import that finished with bad rows, in English.

    The /imports page builds the same sentence from the counts, in its own
    language (templates/imports.<language>.json).
    """
    rejected, duplicates = counts["rejected"], counts["duplicates"]
    parts = []
    if rejected:
        parts.append(_count(rejected, "1 row was rejected", "{n} rows were rejected"))
    if duplicates:
        parts.append(_count(duplicates, "1 row was a duplicate", "{n} rows were duplicates"))
    imported = _count(counts["imported"], "1 user was imported", "{n} users were imported",
                      zero="no users were imported")
    text = f"{' and '.join(parts)}; {imported}."
    if rejected + duplicates <= limit:
        text += " " + _count(rejected + duplicates, "The error report lists that row.",
                             "The error report lists each of them.")
    else:
        text += " " + _count(limit, "The error report lists only the first of them.",
                             "The error report lists the first {n} of them.",
                             zero="The error report lists none of them.")
    return text
