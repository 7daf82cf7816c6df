"""What the import API shows: an import's status, and its error report as CSV."""

import csv
import json
import tempfile

from sqlalchemy import select

from . import csvfile
from .models import ImportRowError
from .schemas import Import

# A cell that spreadsheet software would run as a formula.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell):
    """Prefix formula-looking cells with a quote, as OWASP advises for CSV exports."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


# What every answer about an import shows, as stored.
STORED = ("id", "name", "original_name", "path", "status", "created_at", "updated_at")


def _import(record, *names, **more):
    """The published Import model, dumped with only the fields given."""
    fields = {name: getattr(record, name) for name in (*STORED, *names)}
    return Import(**fields, **more).model_dump(exclude_unset=True)


def upload_dict(record):
    """The upload's answer: the import as stored, before it runs."""
    return _import(record, "sha256", "size", "send_invitations")


def status_dict(request, record, live):
    """The status API's data: ``live`` is ``ImportService.live(record)``."""
    counts, percent, eta = live
    report = (request.route_path("csv_import.errors", id=record.id)
              if counts["rejected"] or counts["duplicates"] else None)
    return _import(
        record, "error", "deleted_at", "started_at", "finished_at", "send_invitations",
        "error_rows", "file_removed_at", "size", "sha256", **counts,
        progress=percent, eta_seconds=eta, error_report=report,
        error_summary=json.loads(record.error_summary) if record.error_summary else None)


def error_report(dbsession, record):
    """The rejected rows as a CSV file object (spooled, so it never fills memory)."""
    out = tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+b")
    text = _TextSink(out)
    writer = csv.writer(text, delimiter=record.delimiter or ",", lineterminator="\r\n")
    text.write("\ufeff")  # Excel reads the file as UTF-8 only with a BOM
    writer.writerow(["Row", *csvfile.HEADER, "Reasons"])
    rows = dbsession.execute(
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


class _TextSink:
    """A text view of a binary file for csv.writer, encoding to UTF-8."""

    def __init__(self, out):
        self.out = out

    def write(self, text):
        self.out.write(text.encode("utf-8"))
