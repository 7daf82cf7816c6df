"""A corpus of nasty files, each uploaded through the API on SQLite and MariaDB.

Every file gets its expected outcome: a 4xx at upload, a file-level failure
(status 2, no user changed), or an import with exact counts. Never a 500,
never partial garbage.
"""

import csv
import io
import json

import pytest
from sqlalchemy import select
from vexpenses_csv_import.testing import (
    HEADER_LINE,
    SMALL,
    auth,
    finished_status,
    make_csv,
    people,
    upload,
)

from vexpenses_core.models import User
from vexpenses_core.testing import make_user

H = HEADER_LINE.encode()
GOOD = [("Ana Lima", "ana.lima@example.com", "1990-01-31"),
        ("Bruno Dias", "bruno@example.com", "1985-12-01")]
LONG_NAME = "N" * 256
LONG_EMAIL = "a" * 64 + "@" + ".".join(["b" * 60] * 4) + ".com"


def upload_error(status, text):
    return {"upload": status, "text": text}


def file_error(text):
    return {"status": 2, "counts": (0, 0, 0, 0), "error": text}


def imported(count, rejected=0, duplicates=0, status=None):
    status = status or (1 if not (rejected or duplicates) else 2)
    return {"status": status, "counts": (count, rejected, duplicates)}


BAD_ROWS = [
    ("", "sem.nome@example.com", "1990-01-01"),  # name required
    ("Al", "curto@example.com", "1990-01-01"),  # name too short
    (LONG_NAME, "longo@example.com", "1990-01-01"),  # name too long
    ("Carla Nunes", "not-an-email", "1990-01-01"),  # invalid e-mail
    ("Carla Nunes", LONG_EMAIL, "1990-01-01"),  # e-mail too long
    ("Carla Nunes", "", "1990-01-01"),  # e-mail required
    ("Dora Melo", "dora@example.com", ""),  # birth date required
    ("Dora Melo", "dora2@example.com", "2020-02-30"),  # no such day
    ("Dora Melo", "dora3@example.com", "2999-01-01"),  # in the future
    ("Dora Melo", "dora4@example.com", "1850-01-01"),  # before 1900
    ("Dora Melo", "dora5@example.com", "2020/01/01"),  # wrong format
    ("Dora Melo", "dora6@example.com", "1-2-2000"),  # not zero-padded
    ("Eva Reis", "eva@example.com"),  # too few columns
    ("Eva Reis", "eva2@example.com", "1990-01-01", "extra"),  # too many columns
    ("", "", ""),  # only delimiters
    ("@SUM(1+1)", "=cmd|' /C calc'!A0", "+1990-01-01"),  # formulas, and bad anyway
]


def corpus():
    """``{name: (bytes, expected)}``."""
    cases = {
        # -- refused at upload
        "binary_png.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
                           upload_error(422, "not binary")),
        "binary_zip.csv": (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 40,
                           upload_error(422, "not binary")),
        "utf16.csv": ((HEADER_LINE + "\nAna Lima,ana@example.com,1990-01-01\n").encode("utf-16"),
                      upload_error(422, "not binary")),
        "nul_in_row.csv": (H + b"\nAna\x00Lima,ana@example.com,1990-01-01\n",
                           upload_error(422, "not binary")),
        "control_chars.csv": (H + b"\n\x1b[31mAna Lima,ana@example.com,1990-01-01\n",
                              upload_error(422, "not binary")),
        # -- file-level errors: status 2, no user changed
        "empty.csv": (b"", file_error("empty")),
        "bom_only.csv": (b"\xef\xbb\xbf", file_error("empty")),
        "blank_lines_only.csv": (b"\n\r\n  \n", file_error("empty")),
        "header_only.csv": (H + b"\n", file_error("no data rows")),
        "header_only_no_newline.csv": (H, file_error("no data rows")),
        "header_and_blank_lines.csv": (H + b"\n\n\r\n\n", file_error("no data rows")),
        "wrong_header.csv": (make_csv(GOOD, header="Name,Email,Birth date"),
                             file_error("header must be exactly")),
        "header_missing_column.csv": (make_csv(GOOD, header="Nome,E-mail"),
                                      file_error("header must be exactly")),
        "header_extra_column.csv": (make_csv(GOOD, header=HEADER_LINE + ",Cidade"),
                                    file_error("header must be exactly")),
        "latin1.csv": (make_csv([("José Conceição", "jose@example.com", "1990-01-01")],
                                encoding="latin-1"), file_error("not valid UTF-8")),
        "latin1_far_down.csv": (make_csv(people(40)) + "Zé Nó,ze@example.com,1990-01-01\n"
                                .encode("latin-1"), file_error("not valid UTF-8")),
        "long_line.csv": (H + b"\n" + make_csv([("A" * 70000, "a@example.com", "1990-01-01")],
                                               header=None), file_error("longer than")),
        "long_header.csv": (b"Nome" * 20000 + b"\n", file_error("longer than")),
        "unclosed_quote.csv": (H + b'\nAna Lima,ana@example.com,1990-01-01\n"Bruno,b@x.com,'
                               b"1990-01-01\nCarla,c@example.com,1990-01-01\n",
                               file_error("never closed")),
        # -- rows
        "bad_rows.csv": (make_csv(GOOD + BAD_ROWS), imported(2, rejected=len(BAD_ROWS))),
        "duplicates_in_file.csv": (make_csv(GOOD + [("Ana Lima Again", "ANA.LIMA@example.com",
                                                     "1990-01-01")] + people(6)
                                            + [("Ana Lima 3", "ana.lima@example.com",
                                                "1991-01-01")]),
                                   imported(8, duplicates=2)),
        "duplicates_against_db.csv": (make_csv(GOOD + [("Not Ana", "ana@example.com",
                                                        "2000-01-01")]),
                                      imported(2, duplicates=1)),
        "bom.csv": (make_csv(GOOD, bom=True), imported(2)),
        "semicolons.csv": (make_csv(GOOD + [("Silva, Ana", "silva@example.com", "1990-01-01")],
                                    delimiter=";"), imported(3)),
        "crlf.csv": (make_csv(GOOD, newline="\r\n"), imported(2)),
        "excel_brazil.csv": (make_csv([("João da Silva", "joao@example.com", "31/12/1980"),
                                       ("Maria Souza", "maria@example.com", "01/02/1999")],
                                      delimiter=";", newline="\r\n", bom=True), imported(2)),
        "quoted_newlines_and_commas.csv": (
            make_csv([("Ana\nMaria Lima", "anamaria@example.com", "1990-01-01"),
                      ("Lima, Bruno", "lb@example.com", "1990-01-01"),
                      ('Carlos "Cacá" Reis', "caca@example.com", "1990-01-01")] + people(5)),
            # A line break inside a name is refused, as register refuses it.
            imported(7, rejected=1)),
        "no_trailing_newline.csv": (make_csv(GOOD).rstrip(b"\n"), imported(2)),
        "mixed_line_endings.csv": (H + b"\r\nAna Lima,ana.lima@example.com,1990-01-31\n"
                                   b"Bruno Dias,bruno@example.com,1985-12-01\r\n", imported(2)),
        "blank_lines_between.csv": (H + b"\n\nAna Lima,ana.lima@example.com,1990-01-31\n\n\n"
                                    b"Bruno Dias,bruno@example.com,1985-12-01\n\n", imported(2)),
        "spaces_around_fields.csv": (H + b"\n  Ana   Lima ,  Ana.Lima@Example.COM , 1990-01-31 \n",
                                     imported(1)),
        "quoted_header.csv": (b'"Nome","E-mail","Data de nascimento"\n'
                              + make_csv(GOOD, header=None), imported(2)),
        "stray_quote.csv": (H + b'\nMaria O"Neil,oneil@example.com,1990-01-01\n' +
                            make_csv(people(5), header=None), imported(6)),
        "unicode.csv": (make_csv([("José Ñandú Çağlar", "jose@exämple.com", "1970-05-05"),
                                  ("李小龍", "lee@example.com", "1940-11-27")]), imported(2)),
        "html_in_name.csv": (make_csv([("<script>alert(1)</script>", "xss@example.com",
                                        "1990-01-01")]), imported(1)),
        "formula_cells.csv": (make_csv([("=HYPERLINK(\"http://x\")", "f1@example.com",
                                         "1990-01-01"),
                                        ("-2+3 Silva", "@bad", "1990-01-01")]),
                              imported(1, rejected=1)),
        "many_chunks.csv": (make_csv(people(60)), imported(60)),
    }
    return cases


CASES = corpus()


@pytest.fixture
def app(make_testapp, tmp_path):
    testapp = make_testapp(**{"vexpenses.upload_dir": str(tmp_path / "uploads"), **SMALL})
    testapp.user_id, testapp.token = make_user(testapp.app.registry, email="ana@example.com",
                                               name="Ana Original")
    return testapp


def users(app):
    session = app.app.registry.dbsession_factory()
    try:
        return {u.email: (u.name, u.birth_date, u.password_hash)
                for u in session.scalars(select(User))}
    finally:
        session.close()


def test_corpus_is_big_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_nasty_file(app, name):
    content, expected = CASES[name]
    before = users(app)
    if "upload" in expected:
        res = upload(app, app.token, content, filename=name, status=expected["upload"])
        assert res.json["status"] is False
        assert expected["text"] in json.dumps(res.json["errors"])
        assert users(app) == before
        return
    res = upload(app, app.token, content, filename=name)
    data = finished_status(app, app.token, res.json["data"]["id"])
    assert data["status"] == expected["status"], data
    after = users(app)
    if "error" in expected:  # a file-level failure changes nothing
        assert expected["error"] in data["error"], data["error"]
        assert after == before
        assert data["imported"] == 0 and data["error_report"] is None
        return
    count, rejected, duplicates = expected["counts"]
    assert (data["imported"], data["rejected"], data["duplicates"]) == expected["counts"]
    assert data["total"] == data["processed"] == count + rejected + duplicates
    assert len(after) == len(before) + count
    assert after["ana@example.com"] == before["ana@example.com"]  # never overwritten
    assert all(after[email] == value for email, value in before.items())
    new = {email: value for email, value in after.items() if email not in before}
    assert all(password is None for _, _, password in new.values())
    if rejected or duplicates:
        report = app.get(data["error_report"], headers=auth(app.token))
        rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
        assert len(rows) == 1 + rejected + duplicates
    else:
        assert data["error_report"] is None


def test_values_as_stored(app):
    content = CASES["quoted_newlines_and_commas.csv"][0] + b""
    res = upload(app, app.token, content)
    finished_status(app, app.token, res.json["data"]["id"])
    res = upload(app, app.token, CASES["excel_brazil.csv"][0], filename="br.csv")
    finished_status(app, app.token, res.json["data"]["id"])
    res = upload(app, app.token, CASES["spaces_around_fields.csv"][0], filename="sp.csv")
    finished_status(app, app.token, res.json["data"]["id"])
    stored = users(app)
    assert "anamaria@example.com" not in stored  # a name with a line break is refused
    assert stored["lb@example.com"][0] == "Lima, Bruno"
    assert stored["caca@example.com"][0] == 'Carlos "Cacá" Reis'
    assert str(stored["joao@example.com"][1]) == "1980-12-31"
    assert stored["ana.lima@example.com"][0] == "Ana Lima"


def test_error_report_rows_reasons_and_formulas(app):
    rows = [("Ana\nLima", "ana.lima@example.com", "1990-01-31")] + BAD_ROWS + GOOD[1:]
    res = upload(app, app.token, make_csv(rows))
    data = finished_status(app, app.token, res.json["data"]["id"])
    report = app.get(data["error_report"], headers=auth(app.token))
    assert report.content_type == "text/csv"
    assert "attachment" in report.headers["Content-Disposition"]
    lines = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    assert lines[0] == ["Row", "Nome", "E-mail", "Data de nascimento", "Reasons"]
    by_row = {int(line[0]): line for line in lines[1:]}
    # the header is row 1 and the quoted newline does not shift the numbering
    assert sorted(by_row) == [2, *range(3, 3 + len(BAD_ROWS))]
    assert "control, invisible or text-direction" in by_row[2][4]
    assert "name field is required" in by_row[3][4]
    assert "at least 3 characters" in by_row[4][4]
    assert "valid email" in by_row[6][4]
    assert "before or equal to today" in by_row[11][4]
    assert "3 columns" in by_row[15][4] and by_row[15][1:3] == ["Eva Reis", "eva@example.com"]
    assert by_row[16][5] == "extra"  # extra fields follow the reasons
    formula = by_row[3 + len(BAD_ROWS) - 1]
    assert formula[1:4] == ["'@SUM(1+1)", "'=cmd|' /C calc'!A0", "'+1990-01-01"]
    summary = data["error_summary"]
    assert summary["name"] == 5 and summary["row"] == 2


def test_oversize_upload_is_413_and_keeps_nothing(make_testapp, tmp_path):
    uploads = tmp_path / "uploads"
    app = make_testapp(**{"vexpenses.upload_dir": str(uploads),
                          "vexpenses.csv_import.max_upload_bytes": "2000"})
    _, token = make_user(app.app.registry)
    content = make_csv(people(100))
    assert len(content) > 2000
    res = upload(app, token, content, status=413)
    assert res.json["status"] is False and "2000 bytes" in res.json["message"]
    # far above the limit: refused before the body is read
    res = upload(app, token, content * 40, status=413)
    assert res.json["status"] is False
    assert not any(path.is_file() for path in uploads.rglob("*"))
    upload(app, token, content[:1500].rsplit(b"\n", 1)[0] + b"\n")
