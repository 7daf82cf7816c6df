"""Unit tests of the file reader: the chunk planner against Python's csv module,
row numbers, the row rules and the e-mail fast path."""

import csv
import datetime
import io
import random

import pytest
from vexpenses_csv_import.csvfile import (
    ChunkReader,
    FileError,
    check_row,
    normalize_email_fast,
    plan_file,
)

from vexpenses_core.accounts.validation import normalize_email

TODAY = datetime.date(2026, 11, 29)


def read_all(data, chunk_bytes, batch=10**9):
    plan = plan_file(io.BytesIO(data), chunk_bytes, 1000)
    records = []
    for chunk in plan.chunks:
        reader = ChunkReader(data[chunk.start:chunk.end], plan.delimiter, chunk.first_row)
        row, finished = chunk.first_row, False
        while not finished:
            got, row, finished = reader.read(row, batch)
            records += got
    return plan, records


def test_a_reader_resumes_from_any_row():
    data = "".join(f"Nome {i},n{i}@example.com,1990-01-01\n\n" for i in range(10)).encode()
    reader = ChunkReader(data, ",", 2)
    first, row, finished = reader.read(2, 5)  # 5 rows, 2 of them blank
    assert [number for number, _ in first] == [2, 4, 6] and row == 7 and not finished
    again, _, _ = ChunkReader(data, ",", 2).read(7, 4)
    assert again == reader.read(7, 4)[0] == [(8, ["Nome 3", "n3@example.com", "1990-01-01"]),
                                              (10, ["Nome 4", "n4@example.com", "1990-01-01"])]
    assert reader.read(2, 1)[0] == first[:1]  # backwards: starts over
    rest, row, finished = reader.read(3, 100)
    assert finished and row == 22 and rest[-1][0] == 20


def test_a_record_csv_cannot_read_is_kept_as_a_bad_row():
    import csv as csv_module

    limit = csv_module.field_size_limit()
    data = b"a,b,c\n" + b"x" * (limit + 10) + b",y,z\nd,e,f\n"
    for batch in (1, 2, 10):
        reader = ChunkReader(data, ",", 2)
        records, row, finished = [], 2, False
        while not finished:
            got, row, finished = reader.read(row, batch)
            records += got
        assert records == [(2, ["a", "b", "c"]), (3, None), (4, ["d", "e", "f"])], batch


def test_planner_agrees_with_the_csv_module_on_random_files():
    rng = random.Random(4)
    pieces = ["a", "b", ",", ";", '"', "\n", "\r\n", " ", "é", '""']
    checked = 0
    for _ in range(4000):
        header = rng.choice(["Nome,E-mail,Data de nascimento\n",
                             "\ufeffNome;E-mail;Data de nascimento\r\n"])
        data = (header + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 60)))).encode()
        try:
            plan, records = read_all(data, rng.randint(1, 25), rng.randint(1, 4))
        except FileError:
            continue
        text = data.decode("utf-8-sig")
        lines = csv.reader(io.StringIO(text, newline=""), delimiter=plan.delimiter)
        expected = [(number, fields) for number, fields in enumerate(lines, start=1)
                    if number > 1 and (any(f.strip() for f in fields) or len(fields) > 1)]
        assert records == expected, data
        checked += 1
    assert checked > 2000


def test_a_plan_does_not_depend_on_where_the_blocks_end(monkeypatch):
    """Quotes, newlines and chunk cuts that straddle the planner's read blocks."""
    import vexpenses_csv_import.csvfile as csvfile

    rng = random.Random(5)
    pieces = ["a", ",", '"', "\n", "\r\n", '""', "é", "ab,c\n", '"x\ny",z\n']
    checked = 0
    for _ in range(1500):
        data = ("Nome,E-mail,Data de nascimento\n"
                + "".join(rng.choice(pieces) for _ in range(rng.randint(1, 80)))).encode()
        chunk_bytes = rng.randint(1, 40)
        try:
            whole = plan_file(io.BytesIO(data), chunk_bytes, 1000)
        except FileError as exc:
            whole = exc.message
        monkeypatch.setattr(csvfile, "BLOCK", rng.randint(32, 40))  # the header fits in one
        try:
            blocks = plan_file(io.BytesIO(data), chunk_bytes, 1000)
        except FileError as exc:
            blocks = exc.message
        monkeypatch.undo()
        assert blocks == whole, data
        checked += not isinstance(whole, str)
    assert checked > 500


def test_chunks_cover_the_file_at_record_boundaries():
    data = b"Nome,E-mail,Data de nascimento\n" + b"".join(
        b'"Name\n%d",n%d@example.com,1990-01-01\n' % (i, i) for i in range(100))
    plan = plan_file(io.BytesIO(data), 200, 1000)
    assert len(plan.chunks) > 10 and plan.records == 100
    assert plan.chunks[0].start == 31 and plan.chunks[-1].end == len(data)
    for before, after in zip(plan.chunks, plan.chunks[1:], strict=False):
        assert before.end == after.start and data[after.start:after.start + 6] == b'"Name\n'
        assert after.first_row == before.first_row + data[before.start:before.end].count(b'"N')


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"Nome,E-mail,Data de nascimento\n\x00", "NUL"),
    (b"Nome,E-mail,Data de nascimento\n" + b"x" * 1500, "longer than"),
    (b'Nome,E-mail,Data de nascimento\n"' + b"x\n" * 600, "longer than"),
    # The row named is the long one, not the first of the block.
    (b"Nome,E-mail,Data de nascimento\nab,c\n" + b"x" * 1500 + b"\nd,e\n", "Row 3 is longer"),
    (b'Nome,E-mail,Data de nascimento\n"a\nb",c\nd\n' + b"x" * 1500 + b"\n", "Row 4 is longer"),
    (b"Nome,E-mail,Data de nascimento\nJo\xe3o,a@b.com,1990-01-01\n", "UTF-8"),
    (b"Nome,E-mail,Data de nascimento\nJo\xc3", "UTF-8"),
])
def test_file_errors(data, message):
    with pytest.raises(FileError) as info:
        plan_file(io.BytesIO(data), 100, 1000)
    assert message in info.value.message


def test_email_fast_path_agrees_with_email_validator():
    rng = random.Random(7)
    alphabet = "abcXYZ09._-+@!#$%&'*/=?^`{|}~\"() ,;:<>[]\\é.ü-"
    samples = ["ana@example.com", "Ana.Souza@Example.COM", "a..b@example.com", ".a@example.com",
               "a.@example.com", "a@localhost", "a@example", "a@-example.com",
               "a@example-.com", "a@exa_mple.com", "a@123.com", "a@example.test",
               "a@example.invalid", "a@x.local", "x" * 65 + "@example.com",
               "a@" + "b" * 64 + ".com", "a@xn--nxasmq6b.com", "a@müller.de", "ünï@example.com",
               '"quoted"@example.com', "a@[127.0.0.1]", "a@ex ample.com", "a@@example.com",
               "a@example.com.", "a+tag@gmail.com", "o'neil@example.ie", "a@e.c0m", "a@e.c"]
    for _ in range(3000):
        local = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        domain = rng.choice(["example.com", "Gmail.COM", "a.b", "x-y.com.br", "ex..com",
                             "-a.com", "a.c", "localhost", "bol.com.br", "exámple.com"])
        samples.append(f"{local}@{domain}")
    for value in samples:
        assert normalize_email_fast(value) == normalize_email(value), value


@pytest.mark.parametrize("fields, field, message", [
    (["", "a@example.com", "1990-01-01"], "name", "required"),
    (["Al", "a@example.com", "1990-01-01"], "name", "at least 3"),
    (["N" * 256, "a@example.com", "1990-01-01"], "name", "greater than 255"),
    (["Ana", "a" * 250 + "@example.com", "1990-01-01"], "email", "greater than 254"),
    (["Ana\tLima", "a@example.com", "1990-01-01"], "name", "control, invisible"),
    (["Ana \u202eLima", "a@example.com", "1990-01-01"], "name", "control, invisible"),
    (["Ana", "nope", "1990-01-01"], "email", "valid email"),
    (["Ana", "a@example.com", "30/02/2000"], "birth_date", "valid date"),
    (["Ana", "a@example.com", "2026-11-30"], "birth_date", "before or equal"),
    (["Ana", "a@example.com", "1899-12-31"], "birth_date", "valid date"),
    (["Ana", "a@example.com"], "row", "3 columns"),
    (None, "row", "not valid CSV"),
])
def test_row_rules(fields, field, message):
    values, errors = check_row(fields, TODAY)
    assert values is None and message in " ".join(errors[field])


def test_date_fast_path_agrees_with_parse_date():
    from vexpenses_csv_import.csvfile import DATE_FORMATS, _parse_birth_date

    from vexpenses_core.accounts.validation import parse_date

    rng = random.Random(3)
    samples = ["2000-02-29", "1900-02-29", "1899-12-31", "1900-01-01", "31/12/1999",
               "29/02/2001", "2020-1-5", "5/1/2020", "0999-01-01", "２０２０-01-01", " 2000-01-01"]
    samples += ["".join(rng.choice("0123456789-/") for _ in range(10)) for _ in range(3000)]
    for value in samples:
        assert _parse_birth_date(value) == parse_date(value, DATE_FORMATS), value


def test_good_rows_are_cleaned():
    assert check_row(["  Ana   Maria ", " ANA@Example.com ", "31/12/1999"], TODAY) == (
        ("Ana Maria", "ana@example.com", datetime.date(1999, 12, 31)), None)
    assert check_row(["Ana", "a@example.com", "2026-11-29"], TODAY)[1] is None
