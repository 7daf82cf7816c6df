"""`vexpenses import CONFIG FILE.csv`: the same service, a progress bar, exit codes."""

import os
import pathlib
import subprocess
import sys

from pyramid.scripting import prepare
from sqlalchemy import select
from vexpenses_csv_import.models import Import
from vexpenses_csv_import.processing import ImportProcessor
from vexpenses_csv_import.services import ImportService
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core.tasks import run_task
from vexpenses_core.testing import JWT_SECRET, make_user, write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


def run_import(testapp, tmp_path, *args, command="import"):
    settings = testapp.app.registry.settings
    env = dict(os.environ, VEXPENSES_DATABASE_URL=settings["vexpenses.database_url"],
               VEXPENSES_PLUGINS="csv_import", VEXPENSES_JWT_SECRET=JWT_SECRET,
               VEXPENSES_REDIS_URL="", VEXPENSES_UPLOAD_DIR=str(tmp_path / "uploads"),
               VEXPENSES_REDIS_PREFIX=settings["vexpenses.redis_prefix"],
               VEXPENSES_CSV_IMPORT_CHUNK_BYTES="200", VEXPENSES_CSV_IMPORT_BATCH_ROWS="5")
    return subprocess.run([VEXPENSES, command, str(write_ini(tmp_path)), *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_cli_import_shows_progress_and_exit_status(testapp, tmp_path):
    user_id, _ = make_user(testapp.app.registry, email="ana@example.com")
    good = tmp_path / "good.csv"
    good.write_bytes(make_csv(people(40)))
    result = run_import(testapp, tmp_path, good, "--uploader", "ANA@example.com")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert "queued" in lines[0]
    assert any("[" + "#" * 30 + "] 100% 40/40 rows, 40 imported" in line for line in lines)
    assert lines[-1].endswith("status 1")
    db = testapp.app.registry.dbsession_factory()
    record = db.scalars(select(Import)).one()
    db.close()
    assert (record.user_id, record.original_name, record.imported) == (user_id, "good.csv", 40)

    bad = tmp_path / "bad.csv"
    bad.write_bytes(make_csv(people(3, start=100) + [("x", "y", "z")]))
    result = run_import(testapp, tmp_path, bad, "--no-invitations")
    assert result.returncode == 1
    assert "3 imported, 1 rejected" in result.stdout
    assert "1 row was rejected;" in result.stdout.splitlines()[-1]

    result = run_import(testapp, tmp_path, bad, "--uploader", "nobody@example.com")
    assert result.returncode == 2 and "no user with e-mail" in result.stderr
    result = run_import(testapp, tmp_path, tmp_path / "missing.csv")
    assert result.returncode == 2 and "No such file" in result.stderr


def plan_without_sending(request, import_id):
    request.enqueue = lambda *args, **kwargs: None  # the chunk tasks are lost
    ImportProcessor(request).plan(import_id)


def test_import_resume_finishes_an_import_whose_tasks_were_lost(make_testapp, tmp_path):
    testapp = make_testapp(**{"vexpenses.upload_dir": str(tmp_path / "uploads")})
    registry = testapp.app.registry
    env = prepare(registry=registry)
    request = env["request"]
    request.enqueue = lambda *args, **kwargs: None  # the planning task is lost too
    source = tmp_path / "stuck.csv"
    source.write_bytes(make_csv(people(7)))
    with request.tm, open(source, "rb") as fileobj:
        import_id = ImportService(request).create(fileobj, "stuck.csv", None).id
    env["closer"]()

    result = run_import(testapp, tmp_path, import_id, command="import-resume")
    assert result.returncode == 0, result.stderr
    assert status_of(registry, import_id) == (1, 7)

    # planned, but the chunk tasks never sent
    with request.tm, open(source, "rb") as fileobj:
        import_id = ImportService(request).create(fileobj, "stuck.csv", None).id
    run_task(registry, plan_without_sending, (import_id,), {})
    assert status_of(registry, import_id) == (3, 0)
    result = run_import(testapp, tmp_path, import_id, command="import-resume")
    assert result.returncode == 0, result.stderr
    assert status_of(registry, import_id) == (2, 0)  # all 7 are duplicates by now

    result = run_import(testapp, tmp_path, import_id, command="import-resume")
    assert "already finished" in result.stdout
    result = run_import(testapp, tmp_path, 999999, command="import-resume")
    assert result.returncode == 2 and "no import" in result.stderr


def status_of(registry, import_id):
    db = registry.dbsession_factory()
    try:
        record = db.get(Import, import_id)
        return record.status, record.imported
    finally:
        db.close()
