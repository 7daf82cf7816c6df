"""Issue 9, class 7: the import cannot be turned against strangers.

Invitations only for admins' imports, per-user quotas (429 with Retry-After),
owner-only files removed after their retention, and a bounded number of
stored error rows with exact counts. On SQLite and MariaDB, with real Redis.
"""

import datetime
import os
import pathlib
import subprocess
import sys

import pytest
from sqlalchemy import func, select, update
from vexpenses_csv_import.models import Import, ImportRowError
from vexpenses_csv_import.testing import (
    SMALL,
    auth,
    finished_status,
    import_status,
    make_csv,
    people,
    upload,
)

from vexpenses_core import hookimpl
from vexpenses_core.db import utcnow
from vexpenses_core.testing import JWT_SECRET, make_user, wait_for, write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


class InvitationRecorder:
    def __init__(self):
        self.calls = []

    @hookimpl
    def vexpenses_users_imported(self, request, import_id, user_ids, send_invitations):
        self.calls.append(send_invitations)


@pytest.fixture
def make_app(make_testapp, redis_url, tmp_path):
    """An app on real Redis (quotas, progress) running its tasks in-process."""

    def make(**options):
        testapp = make_testapp(**{
            "vexpenses.redis_url": redis_url, "vexpenses.tasks.broker": "inprocess",
            "vexpenses.upload_dir": str(tmp_path / "uploads"), **SMALL,
            **{f"vexpenses.csv_import.{name}": str(value) for name, value in options.items()}})
        registry = testapp.app.registry
        testapp.user_id, testapp.token = make_user(registry, email="ana@example.com")
        testapp.admin_id, testapp.admin_token = make_user(registry, email="root@example.com",
                                                          is_admin=True)
        testapp.other_id, testapp.other_token = make_user(registry, email="bia@example.com")
        testapp.uploads = tmp_path / "uploads"
        testapp.recorder = InvitationRecorder()
        registry.pm.register(testapp.recorder, name="invitation-recorder")
        return testapp

    return make


def stored_files(app):
    return sorted(p for p in app.uploads.rglob("*") if p.is_file())


def db_import(app, import_id):
    db = app.app.registry.dbsession_factory()
    try:
        record = db.get(Import, import_id)
        errors = db.scalar(select(func.count()).select_from(ImportRowError)
                           .where(ImportRowError.import_id == import_id))
        return record, errors
    finally:
        db.close()


# -- invitations ----------------------------------------------------------------

# (who uploads, the send_invitations field or None for none, the setting, invited?)
INVITATION_CASES = [
    ("user", None, "admins", False),
    ("user", "1", "admins", False),
    ("user", "true", "admins", False),
    ("user", "YES", "admins", False),
    ("user", " on ", "admins", False),
    ("user", "anything", "admins", False),
    ("admin", None, "admins", True),
    ("admin", "0", "admins", False),
    ("user", None, "everyone", True),
    ("user", "off", "everyone", False),
]


@pytest.mark.parametrize("who,field,setting,invited", INVITATION_CASES)
def test_only_admin_imports_invite_unless_opened_to_everyone(make_app, who, field, setting,
                                                             invited):
    app = make_app(invitations=setting)
    token = app.admin_token if who == "admin" else app.token
    fields = {} if field is None else {"send_invitations": field}
    res = upload(app, token, make_csv(people(4, domain="example.org")), **fields)
    assert res.json["data"]["send_invitations"] is invited
    data = finished_status(app, token, res.json["data"]["id"])
    assert data["imported"] == 4 and data["send_invitations"] is invited
    assert app.recorder.calls and set(app.recorder.calls) == {invited}


# -- quotas ---------------------------------------------------------------------


def assert_429(res):
    assert res.json["status"] is False and res.json["message"] == "Too many attempts."
    assert 1 <= int(res.headers["Retry-After"]) <= 2 * 86400 + 1


def test_uploads_per_hour_then_429_for_that_user_only(make_app):
    app = make_app(uploads_per_hour=3)
    for _ in range(3):
        upload(app, app.token, make_csv(people(1)))
    files = stored_files(app)
    res = upload(app, app.token, make_csv(people(1)), status=429)
    assert_429(res)
    assert 1 <= int(res.headers["Retry-After"]) <= 3601
    assert stored_files(app) == files  # refused before anything was stored
    upload(app, app.other_token, make_csv(people(1, start=50)))  # someone else's quota
    for i in range(5):  # admins are exempt
        upload(app, app.admin_token, make_csv(people(1, start=100 + i)))


def test_rows_per_day_refuses_what_does_not_fit_without_using_it_up(make_app):
    app = make_app(rows_per_day=10)
    upload(app, app.token, make_csv(people(6)))
    files = stored_files(app)
    assert_429(upload(app, app.token, make_csv(people(5, start=10)), status=429))
    assert stored_files(app) == files  # the refused file is removed
    upload(app, app.token, make_csv(people(4, start=20)))  # the refusal cost nothing
    assert_429(upload(app, app.token, make_csv(people(1, start=30)), status=429))
    upload(app, app.other_token, make_csv(people(10, start=40)))
    upload(app, app.admin_token, make_csv(people(50, start=100)))


# Eleven data rows, however the lines end: each must count against a quota of 10.
ELEVEN_ROWS = [
    make_csv(people(11)),
    make_csv(people(11), newline="\r\n"),
    make_csv(people(11), newline="\r"),
    make_csv(people(11)).rstrip(b"\n"),
    make_csv(people(11), delimiter=";", bom=True),
    make_csv(people(5)) + make_csv(people(6, start=5), header=None, newline="\r"),
    make_csv(people(11))[:-1] + b"\r",
    make_csv([("Quoted\nName", "q@example.com", "1990-01-01")] + people(10)),
    make_csv(people(10)) + b"\n",  # a blank line is a row too
]


@pytest.mark.parametrize("content", ELEVEN_ROWS)
def test_a_file_over_the_daily_rows_is_413_however_its_lines_end(make_app, content):
    app = make_app(rows_per_day=10)
    res = upload(app, app.token, content, status=413)
    assert res.json["status"] is False
    assert "at most 10 rows may be imported per day" in res.json["message"]
    assert stored_files(app) == []
    upload(app, app.token, make_csv(people(10)))  # nothing was counted


# -- files ----------------------------------------------------------------------


def test_stored_files_are_owner_only_whatever_the_umask(make_app):
    app = make_app()
    old = os.umask(0)
    try:
        upload(app, app.token, make_csv(people(2)))
    finally:
        os.umask(old)
    [path] = stored_files(app)
    assert path.stat().st_mode & 0o777 == 0o600


def test_files_are_removed_once_finished_and_the_status_still_works(make_app):
    app = make_app(file_retention=0)
    res = upload(app, app.token, make_csv(people(3) + [("x", "bad", "y")]))
    import_id = res.json["data"]["id"]
    finished_status(app, app.token, import_id)
    assert wait_for(lambda: stored_files(app) == [], 10)
    data = import_status(app, app.token, import_id).json["data"]
    assert (data["status"], data["imported"], data["rejected"]) == (2, 3, 1)
    assert data["file_removed_at"] is not None
    report = app.get(data["error_report"], headers=auth(app.token), status=200)
    assert report.text.count("\r\n") == 2


def test_files_stay_for_their_retention_then_go(make_app):
    app = make_app(file_retention=3600)
    first = upload(app, app.token, make_csv(people(2))).json["data"]["id"]
    finished_status(app, app.token, first)
    app.app.registry.queue.drain()
    assert len(stored_files(app)) == 1  # within its retention
    db = app.app.registry.dbsession_factory()
    db.execute(update(Import).where(Import.id == first).values(
        finished_at=utcnow() - datetime.timedelta(hours=2)))
    db.commit()
    db.close()
    second = upload(app, app.token, make_csv(people(2, start=10))).json["data"]["id"]
    finished_status(app, app.token, second)
    app.app.registry.queue.drain()
    [left] = stored_files(app)  # the next upload removed the expired one
    assert db_import(app, second)[0].path in str(left)
    assert db_import(app, first)[0].file_removed_at is not None
    assert import_status(app, app.token, first).json["data"]["imported"] == 2


def test_the_cleanup_command_removes_expired_files(make_app, tmp_path):
    app = make_app(file_retention=3600)
    import_id = upload(app, app.token, make_csv(people(2))).json["data"]["id"]
    finished_status(app, app.token, import_id)
    settings = app.app.registry.settings

    def cleanup(retention):
        env = dict(os.environ, VEXPENSES_DATABASE_URL=settings["vexpenses.database_url"],
                   VEXPENSES_PLUGINS="csv_import", VEXPENSES_JWT_SECRET=JWT_SECRET,
                   VEXPENSES_REDIS_URL="", VEXPENSES_UPLOAD_DIR=str(app.uploads),
                   VEXPENSES_CSV_IMPORT_FILE_RETENTION=str(retention))
        return subprocess.run([VEXPENSES, "import-cleanup", str(write_ini(tmp_path))],
                              env=env, capture_output=True, text=True, timeout=120)

    result = cleanup(3600)
    assert result.returncode == 0 and "files of 0 finished" in result.stdout, result.stderr
    assert len(stored_files(app)) == 1
    result = cleanup(0)
    assert result.returncode == 0 and "files of 1 finished" in result.stdout, result.stderr
    assert stored_files(app) == []


# -- error rows -----------------------------------------------------------------


@pytest.mark.parametrize("limit", [0, 1, 5, 1000])
def test_error_rows_are_capped_and_the_counts_stay_exact(make_app, limit):
    app = make_app(max_error_rows=limit)
    rows = []
    for i in range(30):  # rejected and duplicate rows spread over every chunk
        rows += [("Bad Row", f"bad{i}", "1990-01-01"),
                 ("Dup Row", "pessoa0@example.com", "1990-01-01"),
                 (f"Pessoa {i}", f"pessoa{i}@example.com", "1990-01-01")]
    res = upload(app, app.admin_token, make_csv(rows))
    data = finished_status(app, app.admin_token, res.json["data"]["id"])
    assert (data["imported"], data["rejected"], data["duplicates"]) == (30, 30, 30)
    kept = min(limit, 60)
    record, errors = db_import(app, data["id"])
    assert errors == record.error_rows == data["error_rows"] == kept
    assert data["error_summary"] == {"email": 30, "duplicate": 30}
    report = app.get(f"/api/v1/user/import-status/{data['id']}/errors",
                     headers=auth(app.admin_token))
    assert report.text.count("\r\n") == kept + 1
    assert data["error"].endswith({
        0: "The error report lists none of them.",
        1: "The error report lists only the first of them.",
        5: "The error report lists the first 5 of them.",
        1000: "The error report lists each of them."}[limit])


def test_a_wide_rejected_row_is_stored_bounded(make_app):
    app = make_app(max_line_bytes=200000)
    wide = ("Wide Row", "wide", *(["x" * 10] * 2000), *([""] * 20000))
    res = upload(app, app.admin_token, make_csv([wide] + people(2)))
    finished_status(app, app.admin_token, res.json["data"]["id"])
    db = app.app.registry.dbsession_factory()
    [fields] = db.scalars(select(ImportRowError.fields)).all()
    db.close()
    assert len(fields) < 4000 * 6 and fields.startswith('["Wide Row", "wide"')


def test_the_settings_refuse_what_would_open_a_hole():
    from vexpenses_csv_import.settings import read_settings

    from vexpenses_core.settings import ConfigurationError

    defaults = read_settings({}, {})
    assert (defaults["invitations"], defaults["uploads_per_hour"], defaults["rows_per_day"],
            defaults["file_retention"], defaults["max_error_rows"]) == (
        "admins", 10, 100000, 86400, 1000)
    assert read_settings({}, {"VEXPENSES_CSV_IMPORT_INVITATIONS": "everyone"})[
        "invitations"] == "everyone"
    for name, bad in [("invitations", "all"), ("invitations", "Admins"),
                      ("rows_per_day", "-1"), ("file_retention", "soon")]:
        with pytest.raises(ConfigurationError, match=name):
            read_settings({f"vexpenses.csv_import.{name}": bad}, {})
