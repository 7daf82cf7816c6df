"""Processing in-process on SQLite and MariaDB: hooks, access, idempotent chunks,
batch retries, crash recovery, and progress that survives losing Redis."""

import threading
import time

import pytest
import redis
from pyramid.scripting import prepare
from pyramid_retry import mark_error_retryable
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from vexpenses_csv_import import csvfile, processing, tasks, writers
from vexpenses_csv_import.models import Import, ImportChunk, ImportRowError
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
from vexpenses_core.models import User
from vexpenses_core.tasks import run_task
from vexpenses_core.testing import make_user, wait_for


class Recorder:
    """Records every csv_import hook call, as another plugin would see them."""

    def __init__(self):
        self.calls = []
        self.lock = threading.Lock()

    def add(self, name, **kwargs):
        with self.lock:
            self.calls.append((name, kwargs))

    def named(self, name):
        return [kwargs for call, kwargs in self.calls if call == name]

    @hookimpl
    def vexpenses_import_uploaded(self, request, import_id):
        self.add("uploaded", import_id=import_id, user=request.identity.id)

    @hookimpl
    def vexpenses_import_viewed(self, request, import_id):
        self.add("viewed", import_id=import_id)

    @hookimpl
    def vexpenses_import_started(self, request, import_id, uploader_id):
        self.add("started", import_id=import_id, uploader_id=uploader_id)

    @hookimpl
    def vexpenses_import_chunk_done(self, request, import_id, chunk_index, counts):
        self.add("chunk_done", import_id=import_id, chunk_index=chunk_index, counts=counts)

    @hookimpl
    def vexpenses_users_imported(self, request, import_id, user_ids, send_invitations):
        self.add("users_imported", import_id=import_id, user_ids=user_ids,
                 send_invitations=send_invitations)

    @hookimpl
    def vexpenses_import_finished(self, request, import_id, uploader_id, status, counts,
                                  send_invitations):
        self.add("finished", import_id=import_id, uploader_id=uploader_id, status=status,
                 counts=counts, send_invitations=send_invitations)


@pytest.fixture
def app(app):
    """The conftest's app, with a recorder of the import hooks."""
    app.recorder = Recorder()
    app.app.registry.pm.register(app.recorder, name="recorder")
    return app


def session(app):
    return app.app.registry.dbsession_factory()


def db_state(app, import_id):
    db = session(app)
    try:
        record = db.get(Import, import_id)
        chunks = db.scalars(select(ImportChunk).where(ImportChunk.import_id == import_id)).all()
        errors = db.scalar(select(func.count()).select_from(ImportRowError)
                           .where(ImportRowError.import_id == import_id))
        users = db.scalar(select(func.count()).select_from(User))
        return record, chunks, errors, users
    finally:
        db.close()


def import_with_rejects(app):
    """Upload 20 good rows, a bad one and a duplicate, without invitations, and wait for
    the end: ``(import id, final status, recorder)``."""
    rows = people(20) + [("Bad", "bad", "x"), ("Dup", "pessoa1@example.com", "1990-01-01")]
    res = upload(app, app.token, make_csv(rows), send_invitations="false")
    import_id = res.json["data"]["id"]
    assert res.json["data"]["send_invitations"] is False
    return import_id, finished_status(app, app.token, import_id), app.recorder


def test_hook_import_uploaded_names_the_import_and_the_uploader(app):
    import_id, _, rec = import_with_rejects(app)
    assert rec.named("uploaded") == [{"import_id": import_id, "user": app.user_id}]


def test_hook_import_viewed_on_a_status_read(app):
    _, _, rec = import_with_rejects(app)
    assert len(rec.named("viewed")) >= 1


def test_hook_import_started_once_with_the_uploader(app):
    import_id, _, rec = import_with_rejects(app)
    assert rec.named("started") == [{"import_id": import_id, "uploader_id": app.user_id}]


def test_hook_import_chunk_done_once_per_chunk_with_its_counts(app):
    import_id, _, rec = import_with_rejects(app)
    record, chunks, _, _ = db_state(app, import_id)
    assert len(chunks) > 2  # small chunks: the file really was split
    done = rec.named("chunk_done")
    assert sorted(call["chunk_index"] for call in done) == list(range(len(chunks)))
    assert sum(call["counts"]["imported"] for call in done) == 20
    assert set(done[0]["counts"]) == {"total", "processed", "imported", "rejected", "duplicates"}


def test_hook_users_imported_names_each_new_user_once(app):
    _, _, rec = import_with_rejects(app)
    imported = rec.named("users_imported")
    ids = [user_id for call in imported for user_id in call["user_ids"]]
    assert len(ids) == len(set(ids)) == 20
    assert all(isinstance(user_id, int) for user_id in ids)
    assert all(call["send_invitations"] is False for call in imported)


def test_hook_import_finished_once_with_the_exact_counts(app):
    import_id, data, rec = import_with_rejects(app)
    [finished] = rec.named("finished")
    assert finished == {
        "import_id": import_id, "uploader_id": app.user_id, "status": 2,
        "counts": {"total": 22, "processed": 22, "imported": 20, "rejected": 1,
                   "duplicates": 1},
        "send_invitations": False}
    assert data["status"] == 2 and data["error"] == (
        "1 row was rejected and 1 row was a duplicate; 20 users were imported. "
        "The error report lists each of them.")


def test_invitations_default_on_and_file_failure_finishes_once(app):
    res = upload(app, app.admin_token, make_csv(people(2)))
    finished_status(app, app.admin_token, res.json["data"]["id"])
    assert all(c["send_invitations"] for c in app.recorder.named("users_imported"))
    res = upload(app, app.token, b"Wrong,Header\n", send_invitations="0")
    failed_id = res.json["data"]["id"]
    finished_status(app, app.token, failed_id)
    failed = [c for c in app.recorder.named("finished") if c["import_id"] == failed_id]
    assert failed == [{"import_id": failed_id, "uploader_id": app.user_id, "status": 2,
                       "counts": dict.fromkeys(
                           ["total", "processed", "imported", "rejected", "duplicates"], 0),
                       "send_invitations": False}]
    assert not [c for c in app.recorder.named("started") if c["import_id"] == failed_id]


def test_only_the_uploader_or_an_admin_sees_an_import(app):
    res = upload(app, app.token, make_csv(people(3) + [("x", "y", "z")]))
    import_id = res.json["data"]["id"]
    finished_status(app, app.token, import_id)
    import_status(app, app.admin_token, import_id)
    report = f"/api/v1/user/import-status/{import_id}/errors"
    app.get(report, headers=auth(app.token), status=200)
    app.get(report, headers=auth(app.admin_token), status=200)
    for token in (app.other_token,):
        res = import_status(app, token, import_id, status=404)
        assert res.json == {"status": False, "message": "Not found.", "errors": "Not found."}
        app.get(report, headers=auth(token), status=404)
        app.delete(f"/api/v1/user/import-status/{import_id}", headers=auth(token), status=404)
    for bad in ("999999", "abc", "0", "-1", "99999999999999999999999"):
        import_status(app, app.admin_token, bad, status=404)
    app.get(f"/api/v1/user/import-status/{import_id}", status=401)
    app.get(report, status=401)
    upload(app, "not-a-token", make_csv(people(1)), status=401)
    # a soft-deleted import is gone for everyone, its row kept
    res = app.delete(f"/api/v1/user/import-status/{import_id}", headers=auth(app.token))
    assert res.json["data"]["deleted_at"] is not None
    import_status(app, app.token, import_id, status=404)
    import_status(app, app.admin_token, import_id, status=404)
    assert db_state(app, import_id)[0].deleted_at is not None


def test_upload_input_errors(app):
    res = app.post("/api/v1/user/upload", params={"name": "x"},
                   headers=auth(app.token), status=422)
    assert res.json["errors"] == {"file": ["The file field is required."]}
    res = app.post("/api/v1/user/upload", params={"file": "just text"},
                   headers=auth(app.token), status=422)
    assert res.json["errors"] == {"file": ["The file field must be a file."]}
    res = app.post_json("/api/v1/user/upload", {"file": "x"}, headers=auth(app.token),
                        status=422)
    assert res.json["status"] is False
    # A multipart body that is not one is the body's fault; no file is the file's.
    for content_type, body, field in [("multipart/form-data", b"no boundary", "body"),
                                      ("multipart/form-data; boundary=y", b"--x--\r\n", "body"),
                                      ("multipart/form-data; boundary=x", b"--x--\r\n", "file"),
                                      ("text/csv", b"Nome,E-mail,Data de nascimento\n",
                                       "file")]:
        res = app.post("/api/v1/user/upload", body, status=422,
                       headers={**auth(app.token), "Content-Type": content_type})
        assert list(res.json["errors"]) == [field]
    res = upload(app, app.token, make_csv(people(1)), filename="../../etc/pass\x00wd.csv")
    assert res.json["data"]["original_name"] == "passwd.csv"
    assert ".." not in res.json["data"]["path"]


def test_redelivered_tasks_change_nothing_and_finish_once(app):
    registry = app.app.registry
    res = upload(app, app.token, make_csv(people(12) + [("Bad", "bad", "x")]))
    import_id = res.json["data"]["id"]
    before = finished_status(app, app.token, import_id)
    record, chunks, errors, users = db_state(app, import_id)
    calls = len(app.recorder.calls)
    for chunk in chunks:  # every chunk delivered again after it committed
        run_task(registry, tasks.process_chunk, (import_id, chunk.chunk_index), {})
    run_task(registry, tasks.plan, (import_id,), {})
    registry.queue.drain()
    after = import_status(app, app.token, import_id).json["data"]
    assert db_state(app, import_id)[2:] == (errors, users)
    assert {k: after[k] for k in before if k != "eta_seconds"} == {
        k: before[k] for k in before if k != "eta_seconds"}
    assert [c for c, _ in app.recorder.calls[calls:]] == ["viewed"]


def test_a_chunk_killed_mid_way_resumes_from_its_last_batch(make_testapp, tmp_path,
                                                            monkeypatch):
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path),
                          "vexpenses.csv_import.chunk_bytes": "400",
                          "vexpenses.csv_import.batch_rows": "3"})
    registry = app.app.registry
    _, token = make_user(registry)
    recorder = Recorder()
    registry.pm.register(recorder, name="recorder")
    real = csvfile.ChunkReader.read_rows
    crashed = []

    def crash_in_a_later_batch(self, from_row, limit):
        if from_row > self.first_row and not crashed:
            crashed.append(from_row)
            raise RuntimeError("worker died")
        return real(self, from_row, limit)

    monkeypatch.setattr(csvfile.ChunkReader, "read_rows", crash_in_a_later_batch)
    res = upload(app, token, make_csv(people(30)))
    import_id = res.json["data"]["id"]
    registry.queue.drain()
    record, chunks, _, _ = db_state(app, import_id)
    assert record.status == 3  # one chunk stopped half-way, the others are done
    [stuck] = [chunk for chunk in chunks if not chunk.done]
    assert stuck.next_row == crashed[0] > stuck.first_row  # its first batch had committed
    monkeypatch.setattr(csvfile.ChunkReader, "read_rows", real)
    run_task(registry, tasks.process_chunk, (import_id, stuck.chunk_index), {})
    data = finished_status(app, token, import_id)
    assert (data["status"], data["imported"], data["processed"]) == (1, 30, 30)
    assert len(recorder.named("finished")) == 1
    ids = [i for c in recorder.named("users_imported") for i in c["user_ids"]]
    assert len(ids) == len(set(ids)) == 30


def test_a_batch_is_retried_after_a_deadlock_without_double_counting(app, monkeypatch):
    real = writers.user_writer
    failures = {"left": 2}

    def deadlock_twice(db):
        writer = real(db)
        # Whichever path the batch takes: row by row, or checked at once.
        writer.insert = lambda rows, insert=writer.insert: fail_after(insert, rows)
        writer.insert_columns = lambda *columns, insert=writer.insert_columns: fail_after(
            insert, *columns)
        return writer

    def fail_after(insert, *args):
        result = insert(*args)
        if failures["left"]:
            failures["left"] -= 1
            exc = OperationalError("INSERT", {}, Exception(1213, "Deadlock found"))
            mark_error_retryable(exc)
            raise exc
        return result

    monkeypatch.setattr(processing, "user_writer", deadlock_twice)
    res = upload(app, app.token, make_csv(people(10) + [("Bad", "bad", "x")]))
    data = finished_status(app, app.token, res.json["data"]["id"])
    assert failures["left"] == 0
    assert (data["imported"], data["rejected"], data["total"]) == (10, 1, 11)
    _, _, errors, users = db_state(app, res.json["data"]["id"])
    assert (errors, users) == (1, 3 + 10)
    ids = [i for c in app.recorder.named("users_imported") for i in c["user_ids"]]
    assert len(ids) == 10  # the rolled-back attempts' calls were retried, not added


def test_one_chunk_run_three_times_at_once_counts_once(make_testapp, tmp_path):
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path),
                          "vexpenses.csv_import.batch_rows": "2",
                          "vexpenses.csv_import.batch_delay": "0.05"})
    registry = app.app.registry
    _, token = make_user(registry)
    res = upload(app, token, make_csv(people(16)))
    import_id = res.json["data"]["id"]
    assert wait_for(lambda: db_state(app, import_id)[1], 10)  # planned: one chunk
    threads = [threading.Thread(target=run_task,
                                args=(registry, tasks.process_chunk, (import_id, 0), {}))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    data = finished_status(app, token, import_id)
    assert (data["status"], data["imported"], data["processed"]) == (1, 16, 16)
    assert db_state(app, import_id)[3] == 1 + 16


def test_progress_is_monotonic_and_survives_losing_redis(make_testapp, tmp_path):
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path),
                          "vexpenses.csv_import.chunk_bytes": "400",
                          "vexpenses.csv_import.batch_rows": "2",
                          "vexpenses.csv_import.batch_delay": "0.02"})
    registry = app.app.registry
    _, token = make_user(registry)
    res = upload(app, token, make_csv(people(80)))
    import_id = res.json["data"]["id"]
    key = registry.settings["vexpenses.redis_prefix"] + f"csv_import:progress:{import_id}"
    seen, deleted = [], 0
    while True:
        data = import_status(app, token, import_id).json["data"]
        seen.append((data["progress"], data["processed"]))
        if data["status"] in (1, 2):
            break
        if data["status"] == 3 and 10 < data["progress"] < 90 and deleted < 3:
            deleted += lose_running_progress(registry.redis, key)
    assert deleted >= 1, seen
    assert data["status"] == 1 and data["imported"] == 80
    progress = [p for p, _ in seen]
    processed = [p for _, p in seen]
    assert progress == sorted(progress) and progress[-1] == 100
    assert all(0 <= p <= 100 for p in progress) and max(progress[:-1]) <= 99
    assert processed == sorted(processed)
    # Dropped when finished: only a marker that expires within a minute is left.
    assert registry.redis.hgetall(key) == {b"done": b"1"}
    assert 0 < registry.redis.ttl(key) <= 60


def lose_running_progress(client, key):
    """Delete the progress hash as Redis losing it mid-import would: not once
    the import has finished (the status above may be a moment old), since
    then the test itself would remove the marker it checks for."""
    with client.pipeline(transaction=True) as pipe:
        try:
            pipe.watch(key)
            if pipe.hget(key, "done"):
                return 0
            pipe.multi()
            pipe.delete(key)
            pipe.execute()
            return 1
        except redis.exceptions.WatchError:
            return 0


@pytest.mark.parametrize("cap", [2, 3])
def test_an_import_runs_at_most_parallel_chunks_at_once(make_testapp, tmp_path, cap):
    """Six task threads, many chunks: never more than ``cap`` of them begun and not done."""
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path),
                          "vexpenses.worker.threads": "6",
                          "vexpenses.csv_import.chunk_bytes": "300",
                          "vexpenses.csv_import.batch_rows": "2",
                          "vexpenses.csv_import.batch_delay": "0.03",
                          "vexpenses.csv_import.parallel_chunks": str(cap)})
    _, token = make_user(app.app.registry)
    res = upload(app, token, make_csv(people(120)))
    import_id = res.json["data"]["id"]
    running, queued = [], []
    deadline = time.monotonic() + 120  # a stalled import fails, a slow machine does not
    while True:
        record, chunks, _, _ = db_state(app, import_id)
        if record.status in (1, 2):
            break
        running.append(sum(1 for c in chunks if c.first_row < c.next_row and not c.done))
        queued.append(record.chunks_queued)
        # A chunk is begun only once queued, and is queued only when one is done.
        assert all(c.next_row == c.first_row for c in chunks
                   if c.chunk_index >= record.chunks_queued)
        assert record.chunks_queued <= min(record.chunks_done + cap, record.chunks_total)
        assert time.monotonic() < deadline, f"the import did not finish: {record.status=}, " \
            f"{record.chunks_queued=}, {record.chunks_done=}, {[c.next_row for c in chunks]}"
        time.sleep(0.005)
    assert record.status == 1 and record.imported == 120
    assert len(chunks) > 2 * cap and record.chunks_queued == len(chunks)
    assert max(running) == cap, running  # in parallel, up to the cap and no further
    assert queued == sorted(queued)


def test_a_redelivered_plan_queues_only_the_queued_chunks_not_done(make_testapp, tmp_path):
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path), **SMALL,
                          "vexpenses.csv_import.parallel_chunks": "2"})
    registry = app.app.registry
    _, token = make_user(registry)
    res = upload(app, token, make_csv(people(30)))
    import_id = res.json["data"]["id"]
    finished_status(app, token, import_id)
    db = session(app)
    try:  # as if it had stopped after its first chunk, with chunks 1 and 2 queued
        record = db.get(Import, import_id)
        record.status, record.chunks_queued, record.chunks_done = 3, 3, 1
        for chunk in db.scalars(select(ImportChunk).where(ImportChunk.import_id == import_id)):
            chunk.done = chunk.chunk_index == 0
        db.commit()
    finally:
        db.close()
    env = prepare(registry=registry)
    try:
        with env["request"].tm:
            planned = processing.ImportProcessor(env["request"]).plan(import_id)
    finally:
        env["closer"]()
    assert planned.chunks == [1, 2]


def test_on_mariadb_every_batch_goes_in_with_load_data(app):
    registry = app.app.registry
    if registry.dbengine.dialect.name != "mysql":
        pytest.skip("LOAD DATA is MariaDB/MySQL's")

    def loads():  # the server's count of LOAD DATA statements, from every client
        with registry.dbengine.connect() as conn:
            return int(conn.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Com_load'").one()[1])

    before = loads()
    res = upload(app, app.token, make_csv(people(30) + [("Dup", "ana@example.com", "1990-01-01")]))
    data = finished_status(app, app.token, res.json["data"]["id"])
    assert (data["imported"], data["duplicates"]) == (30, 1)
    assert loads() - before >= 11  # SMALL: at most 3 rows a batch


def test_a_taken_email_in_a_batch_checked_at_once_is_reported_with_its_row(app, monkeypatch):
    """The batch path leaves duplicates to the unique index, and still reports each
    one with its own row number and fields."""
    taken = []

    def spy(rows, today, real=csvfile.check_batch):
        result = real(rows, today)
        taken.append(result is not None)
        return result

    monkeypatch.setattr(csvfile, "check_batch", spy)
    rows = people(5) + [("Ana Again", "ANA@Example.com", "1990-01-01")] + people(3, start=5)
    res = upload(app, app.token, make_csv(rows), send_invitations="false")
    data = finished_status(app, app.token, res.json["data"]["id"])
    assert (data["imported"], data["duplicates"], data["rejected"]) == (8, 1, 0)
    assert taken and all(taken)  # every batch took the batch path, the duplicate's too
    report = app.get(f"/api/v1/user/import-status/{data['id']}/errors", headers=auth(app.token))
    [line] = [line for line in report.text.splitlines() if "Ana Again" in line]
    assert line.startswith("7,Ana Again,ANA@Example.com,1990-01-01,")
    ids = [i for c in app.recorder.named("users_imported") for i in c["user_ids"]]
    assert len(ids) == len(set(ids)) == 8
