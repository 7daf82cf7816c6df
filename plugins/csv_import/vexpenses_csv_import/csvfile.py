"""Reading import files: file-level checks, splitting into chunks, rows, row rules.

Pure functions over binary file objects, shared by the planning task, the
chunk tasks and the tests. Nothing here touches the database.
"""

import codecs
import csv
import dataclasses
import datetime
import functools
import io
import itertools
import re

from vexpenses_core.accounts.schemas import MAX_NAME_LENGTH, MAX_NAME_SENT, Register
from vexpenses_core.accounts.validation import MAX_EMAIL_OCTETS, normalize_email, parse_date
from vexpenses_core.api import ValidationError
from vexpenses_core.schemas import has_unsafe_text, validate

HEADER = ("Nome", "E-mail", "Data de nascimento")
FIELDS = ("name", "email", "birth_date")
BOM = codecs.BOM_UTF8
BLOCK = 1 << 20
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y")
# Bytes that can precede a quote that opens a quoted field.
_FIELD_STARTS = frozenset(b"\n")
_NEWLINE = ord("\n")


class FileError(Exception):
    """The file as a whole cannot be imported; the message is for the uploader."""

    def __init__(self, message):
        self.message = message
        super().__init__(message)


@dataclasses.dataclass(frozen=True)
class Chunk:
    index: int
    start: int  # byte offset of the chunk's first record
    end: int  # byte offset just past its last record
    first_row: int  # row number of its first record (the header is row 1)


@dataclasses.dataclass(frozen=True)
class Plan:
    delimiter: str
    records: int  # data records, blank lines included
    chunks: list


def plan_file(fileobj, chunk_bytes, max_line_bytes):
    """Check the whole file and split it into chunks at record boundaries.

    One pass over the bytes, mostly in C: quotes are followed with CSV's own
    rules (a quote opens a field only at its start; ``""`` inside a quoted
    field is a literal quote), so a newline inside quotes never ends a chunk.
    Raises :class:`FileError` for an empty or header-only file, a wrong
    header, bytes that are not UTF-8, NUL bytes, an unclosed quote or a
    record longer than ``max_line_bytes``.
    """
    fileobj.seek(0)
    first = fileobj.read(BLOCK)
    if not first.strip(BOM + b" \t\r\n"):
        raise FileError("The file is empty.")
    data_start, delimiter = _read_header(first, max_line_bytes)
    scanner = _Scanner(data_start, ord(delimiter), chunk_bytes, max_line_bytes)
    decoder = codecs.getincrementaldecoder("utf-8")()
    _check_text(decoder, first[:data_start], 0)
    base, block = data_start, first[data_start:]
    while block:
        _check_text(decoder, block, base)
        scanner.feed(block, base)
        base += len(block)
        block = fileobj.read(BLOCK)
    _check_text(decoder, b"", base, final=True)
    chunks = scanner.finish(base)
    if scanner.records == 0 or not scanner.nonblank:
        raise FileError("The file has a header but no data rows.")
    return Plan(delimiter, scanner.records, chunks)


def _check_text(decoder, block, base, final=False):
    if b"\x00" in block:
        raise FileError("The file contains binary data (NUL bytes): it is not a CSV text file.")
    try:
        decoder.decode(block, final)
    except UnicodeDecodeError as exc:
        raise FileError(
            f"The file is not valid UTF-8 text (bad byte near offset {base + exc.start}). "
            f'Save it as "CSV UTF-8" and upload it again.'
        ) from None


def _read_header(first, max_line_bytes):
    """Return (offset of the first data record, delimiter) or raise FileError."""
    start = len(BOM) if first.startswith(BOM) else 0
    newline = first.find(b"\n", start)
    end = newline if newline >= 0 else len(first)
    if end - start > max_line_bytes:
        raise FileError(f"Row 1 is longer than {max_line_bytes} bytes: this is not a CSV file.")
    try:
        line = first[start:end].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        raise FileError(
            'The file is not valid UTF-8 text. Save it as "CSV UTF-8" and upload it again.'
        ) from None
    delimiter = ";" if line.count(";") > line.count(",") else ","
    try:
        fields = next(csv.reader([line], delimiter=delimiter), [])
    except csv.Error:
        fields = []
    if tuple(field.strip() for field in fields) != HEADER:
        shown = line if len(line) <= 100 else line[:100] + "..."
        raise FileError(
            f'The header must be exactly "{",".join(HEADER)}" (commas or semicolons); '
            f'found "{shown}".'
        )
    if newline < 0:
        raise FileError("The file has a header but no data rows.")
    return newline + 1, delimiter


class _Scanner:
    """Finds record ends (newlines outside quotes) across blocks."""

    def __init__(self, data_start, delimiter, chunk_bytes, max_line_bytes):
        self.delimiter = delimiter
        self.chunk_bytes = chunk_bytes
        self.max_line = max_line_bytes
        self.record_start = data_start
        self.records = 0
        self.nonblank = False
        self.in_quotes = False
        self.closed_at = -2  # offset of the last quote that closed a field
        self.prev = _NEWLINE  # the byte before the current block
        self.chunks = []
        self.chunk_start = data_start
        self.chunk_first_row = 2

    def _record_end(self, end):
        """A record ends at ``end`` (just past its newline)."""
        if end - self.record_start > self.max_line + 1:
            self._too_long()
        self.records += 1
        self.record_start = end
        if end - self.chunk_start >= self.chunk_bytes:
            self._cut(end)

    def _cut(self, end):
        rows = 2 + self.records
        self.chunks.append(Chunk(len(self.chunks), self.chunk_start, end, self.chunk_first_row))
        self.chunk_start, self.chunk_first_row = end, rows

    def _too_long(self):
        raise FileError(
            f"Row {2 + self.records} is longer than {self.max_line} bytes: "
            f"the file is not a valid import file (is a quote left open?)."
        )

    def feed(self, block, base):
        if not self.nonblank:
            start = max(self.record_start - base, 0)
            self.nonblank = bool(block[start:].strip(b" \t\r\n,;"))
        if not self.in_quotes and b'"' not in block:
            self._feed_plain(block, base)
        else:
            self._feed_quoted(block, base)
        self.prev = block[-1]
        if base + len(block) - self.record_start > self.max_line + 1:
            self._too_long()

    def _feed_plain(self, block, base, pos=0, end=None):
        # No quotes in block[pos:end]: every newline ends a record, so counting
        # is done in C; positions are looked up only where a chunk is cut.
        end = len(block) if end is None else end
        while True:
            need = self.chunk_start + self.chunk_bytes - base - 1
            cut = block.find(b"\n", max(need, pos), end)
            if cut < 0:
                break
            self._count_plain(block, base, pos, cut + 1)
            self._cut(base + cut + 1)
            pos = cut + 1
        self._count_plain(block, base, pos, end)

    def _count_plain(self, block, base, start, end):
        """Count the records that end in ``block[start:end]``."""
        if base + end - self.record_start <= self.max_line:  # no line in it can be too long
            ends = block.count(b"\n", start, end)
            if ends:
                self.records += ends
                self.record_start = base + block.rindex(b"\n", start, end) + 1
            return
        lines = block[start:end].split(b"\n")
        if len(lines) == 1:
            return
        lengths = [base + start - self.record_start + len(lines[0]), *map(len, lines[1:-1])]
        if max(lengths) > self.max_line:
            # Name the record that is too long, not the first of the stretch.
            self.records += next(i for i, n in enumerate(lengths) if n > self.max_line)
            self._too_long()
        self.records += len(lines) - 1
        self.record_start = base + end - len(lines[-1])

    def _feed_quoted(self, block, base):
        # From quote to quote: the stretches outside quotes are counted as
        # plain ones, and the newlines inside quotes are skipped.
        pos = 0
        while True:
            quote = block.find(b'"', pos)
            if self.in_quotes:
                if quote < 0:
                    return
                self.in_quotes = False
                self.closed_at = base + quote
            else:
                self._feed_plain(block, base, pos, len(block) if quote < 0 else quote)
                if quote < 0:
                    return
                offset = base + quote
                before = block[quote - 1] if quote else self.prev
                # A quote opens a field only at its start (or is the second of "").
                if (before in _FIELD_STARTS or before == self.delimiter
                        or offset == self.record_start or self.closed_at == offset - 1):
                    self.in_quotes = True
            pos = quote + 1

    def finish(self, size):
        if self.in_quotes:
            raise FileError(
                f"Row {2 + self.records} opens a quoted field that is never closed."
            )
        if size > self.record_start:  # a last record without a final newline
            self._record_end(size)
        if self.chunk_start < size or not self.chunks:
            self.chunks.append(
                Chunk(len(self.chunks), self.chunk_start, size, self.chunk_first_row)
            )
        return self.chunks


# -- reading the records of a chunk ---------------------------------------------

_END = object()  # the chunk has no more records
_NONE = object()  # no record was read ahead


def _kept(fields):
    """Not a blank line (a record CSV cannot read, None, is kept: it is rejected)."""
    return fields is None or len(fields) > 1 or bool(fields and fields[0].strip())


class ChunkReader:
    """The records of one chunk, read batch by batch from any row on.

    The chunk's bytes (at most ``chunk_bytes``, so memory stays flat) are
    decoded once and parsed by the csv module in C. Rows are numbered from
    the chunk's first row; a blank line uses up a row number and is skipped.
    """

    def __init__(self, data, delimiter, first_row):
        self.text = data.decode("utf-8")
        self.delimiter = delimiter
        self.first_row = first_row
        self._restart()

    def _restart(self):
        self.reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter)
        self.row = self.first_row
        self.ahead = _NONE

    def _next(self):
        if self.ahead is not _NONE:
            fields, self.ahead = self.ahead, _NONE
            return fields
        try:
            return next(self.reader)
        except StopIteration:
            return _END
        except csv.Error:  # a record CSV cannot read: a rejected row
            return None

    def read(self, from_row, limit):
        """The records of the next ``limit`` rows from row ``from_row`` on.

        Returns ``(records, next row, finished)``; each record is
        ``(row number, fields)``, ``fields`` being None when it is not valid CSV.
        """
        first, rows, next_row, finished = self.read_rows(from_row, limit)
        return records(first, rows), next_row, finished

    def read_rows(self, from_row, limit):
        """The next ``limit`` rows from row ``from_row`` on, as the csv module gives them.

        Returns ``(first row number, rows, next row, finished)``. Blank lines
        are among the rows (:func:`records` drops them), and a record CSV
        cannot read is None.
        """
        if from_row < self.row:  # another run moved the checkpoint: start over
            self._restart()
        while self.row < from_row:
            if self._next() is _END:
                return self.row, [], self.row, True
            self.row += 1
        batch = []
        if self.ahead is not _NONE:
            if self.ahead is _END:
                return self.row, [], self.row, True
            batch.append(self._next())
        try:  # the whole batch in C; a record CSV cannot read takes the slow path
            batch.extend(itertools.islice(self.reader, limit - len(batch)))
        except csv.Error:
            self._restart()
            return self._read_slowly(from_row, limit)
        return self._batch(batch, limit)

    def _read_slowly(self, from_row, limit):
        while self.row < from_row:
            self._next()
            self.row += 1
        batch = []
        while len(batch) < limit:
            fields = self._next()
            if fields is _END:
                break
            batch.append(fields)
        return self._batch(batch, limit)

    def _batch(self, batch, limit):
        first = self.row
        self.row += len(batch)
        if len(batch) < limit:
            return first, batch, self.row, True
        self.ahead = self._next()
        return first, batch, self.row, self.ahead is _END


def records(first, rows):
    """``(row number, fields)`` of the rows read from row ``first`` on, blank lines left out."""
    return [(first + i, fields) for i, fields in enumerate(rows) if _kept(fields)]


# -- row rules ----------------------------------------------------------------

_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@functools.lru_cache(maxsize=8192)
def _normal_domain(domain):
    """The domain as email-validator normalises it, or None; cached (domains repeat)."""
    normalized = normalize_email(f"a@{domain}")
    return normalized[2:] if normalized else None


def normalize_email_fast(value):
    """``normalize_email`` with a fast path for plain ASCII addresses.

    The local part of a plain address is a dot-atom that email-validator keeps
    as it is; only the domain needs its rules, and it is checked once per
    distinct domain. Anything else goes through ``normalize_email`` itself.
    """
    local, _, domain = value.rpartition("@")
    if (local and len(local) <= 64 and len(value) <= 254 and value.isascii()
            and _DOT_ATOM.fullmatch(local)):
        normal = _normal_domain(domain.lower())
        return f"{local.lower()}@{normal}" if normal else None
    return normalize_email(value)


_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_BR_DATE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")


@functools.lru_cache(maxsize=32768)  # about 90 years of distinct dates, ~6 MB
def _parse_birth_date(value):
    """``parse_date(value, DATE_FORMATS)``, without strptime for the two plain shapes."""
    match = _ISO_DATE.fullmatch(value)
    if match:
        year, month, day = match.groups()
    else:
        match = _BR_DATE.fullmatch(value)
        if not match:
            return parse_date(value, DATE_FORMATS)
        day, month, year = match.groups()
    try:
        parsed = datetime.date(int(year), int(month), int(day))
    except ValueError:
        return None
    return parsed if parsed.year >= 1900 else None


# Register's own fields, so that a row and a registration can never disagree;
# a row's date may also be written dd/mm/yyyy (_parse_birth_date).
Row = Register.subset("Row", *FIELDS)


def check_row(fields, today):
    """Apply register's rules (no password) to one record.

    Returns ``(name, email, birth_date), None`` or ``None, {field: [messages]}``.
    A good row takes the fast path, which gives what :data:`Row` gives
    (plugins/csv_import/tests/test_row_rules.py proves it); any doubt goes
    to :data:`Row` itself, which also writes the messages.
    """
    if fields is not None and len(fields) == 3:
        name = " ".join(fields[0].split())
        email = fields[1].strip()
        # Register's limits: the raw name too, or runs of spaces would fold a
        # name that Row refuses as too long into one that passes here.
        if (len(fields[0]) <= MAX_NAME_SENT and 3 <= len(name) <= MAX_NAME_LENGTH
                and 0 < len(email) <= MAX_EMAIL_OCTETS and not has_unsafe_text(fields[0])):
            email = normalize_email_fast(email)
            if email is not None:
                birth_date = _parse_birth_date(fields[2].strip())
                if birth_date is not None and birth_date <= today:
                    return (name, email, birth_date), None
    return _check_row_slowly(fields, today)


# White space other than the plain space (what str.isspace() says, written out:
# computing it costs every process 50 ms at start-up; a test holds the two
# together). str.split() folds it, so a name with any is not in its folded form.
OTHER_SPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029"
               "\u202f\u205f\u3000")
_OTHER_SPACE = re.compile(f"[{OTHER_SPACE}]")
_SPACE_BUT_NEWLINE = re.compile(r"[^\S\n]")
_ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
# Lines of plain addresses: a dot-atom local part of 1-64 characters, one @, and
# a domain without white space (whose own rules _normal_domain applies).
_PLAIN_EMAILS = re.compile(
    rf"(?:(?!\.)[.{_ATEXT}]{{1,64}}(?<!\.)@[^@\s]*\n)*(?!\.)[.{_ATEXT}]{{1,64}}(?<!\.)@[^@\s]*")
_DOMAINS = re.compile(r"@([^\n]*)")
_ISO_DATES = re.compile(r"(?:[0-9]{4}-[0-9]{2}-[0-9]{2}\n)*[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_batch(rows, today):
    """The rules of :func:`check_row` for a whole batch at once, when it is plain.

    Returns three lists, the batch's names, normalised e-mails and birth
    dates (ISO text), when every row passes check_row's fast path, every
    e-mail lowercases into its normal form (a plain ASCII address), and no
    two e-mails are the same. Else
    None, and the batch goes row by row. The checks run over each column
    joined into one string, in C, and the e-mail domains and dates once per
    distinct value. test_row_rules.py proves it gives what check_row gives.
    """
    if not rows or None in rows or set(map(len, rows)) != {3}:
        return None
    names, emails, dates = zip(*rows, strict=True)
    # Names: no control, bidi or invisible character; white space folded (one
    # step per row, only for a batch that has some to fold); 3 to
    # MAX_NAME_LENGTH characters once folded.
    flat, joined = "".join(names), "\n".join(names)
    if max(map(len, names)) > MAX_NAME_SENT or has_unsafe_text(flat):
        return None
    if (_OTHER_SPACE.search(flat) or "  " in joined or " \n" in joined or "\n " in joined
            or joined.startswith(" ") or joined.endswith(" ")):
        names = [" ".join(name.split()) for name in names]
    if min(map(len, names)) < 3 or max(map(len, names)) > MAX_NAME_LENGTH:
        return None
    # E-mails: plain ASCII addresses, one per line, whose domain is normal.
    joined = "\n".join(emails)
    if not joined.isascii():
        return None
    if _SPACE_BUT_NEWLINE.search(joined):  # stripped, as check_row does
        emails = [email.strip() for email in emails]
        joined = "\n".join(emails)
    if (".." in joined or joined.count("\n") != len(rows) - 1
            or max(map(len, emails)) > min(254, MAX_EMAIL_OCTETS)
            or not _PLAIN_EMAILS.fullmatch(joined)):
        return None
    for domain in set(_DOMAINS.findall(joined)):
        lower = domain.lower()
        if _normal_domain(lower) != lower:
            return None
    emails = joined.lower().split("\n")
    if len(set(emails)) != len(emails):
        return None
    # Dates: ISO ones checked by the calendar in C; others once per distinct value.
    joined = "\n".join(dates)
    if _ISO_DATES.fullmatch(joined) and joined.count("\n") == len(rows) - 1:
        try:
            parsed = list(map(datetime.date.fromisoformat, dates))
        except ValueError:  # not a day of the calendar
            return None
        if min(parsed).year < 1900 or max(parsed) > today:
            return None
        return list(names), emails, list(dates)
    iso = {}
    for value in set(dates):
        birth_date = _parse_birth_date(value.strip())
        if birth_date is None or birth_date > today:
            return None
        iso[value] = birth_date.isoformat()
    if any(value != text for value, text in iso.items()):
        dates = map(iso.__getitem__, dates)
    return list(names), emails, list(dates)


def _check_row_slowly(fields, today):
    if fields is None:
        return None, {"row": ["The row is not valid CSV."]}
    if len(fields) != 3:
        return None, {"row": [
            f"The row must have 3 columns ({', '.join(HEADER)}); it has {len(fields)}."
        ]}
    try:
        # The faster functions, proven equal by test_csvfile.py.
        row = validate(Row, dict(zip(FIELDS, fields, strict=True)), today=today,
                       normalize_email=normalize_email_fast, parse_date=_parse_birth_date)
    except ValidationError as exc:
        return None, exc.errors
    return (row.name, row.email, row.birth_date), None


def today_utc():
    return datetime.datetime.now(datetime.UTC).date()
