"""Uploads in S3: moto's standalone server over HTTP, reached through boto3 as AWS
would be, with nothing but the standard AWS_* variables pointing there."""

import gc
import hashlib
import io
import os
import pathlib
import re
import subprocess
import sys
import uuid

import pytest
import webtest
from sqlalchemy import select
from vexpenses_csv_import.models import Import, ImportChunk
from vexpenses_csv_import.s3storage import (
    PART_BYTES,
    READ_AHEAD,
    S3UploadStorage,
    bucket_and_prefix,
)
from vexpenses_csv_import.services import STORAGE_DOWN
from vexpenses_csv_import.testing import (
    SMALL,
    finished_status,
    import_status,
    make_csv,
    people,
    upload,
)

from vexpenses_core import ConfigurationError, make_app
from vexpenses_core.testing import (
    JWT_SECRET,
    base_settings,
    clean_tables,
    make_user,
    run_workers,
    wait_for,
    write_ini,
)
from vexpenses_core.testing.s3 import free_port

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


def objects(s3_server, storage_url):
    bucket, prefix = bucket_and_prefix(storage_url)
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {item["Key"][len(prefix):] for item in listed.get("Contents", [])}


def pending_uploads(s3_server, storage_url):
    bucket, _ = bucket_and_prefix(storage_url)
    return s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def read_object(s3_server, storage_url, path):
    bucket, prefix = bucket_and_prefix(storage_url)
    return s3_server.client().get_object(Bucket=bucket, Key=prefix + path)["Body"].read()


def gets_of(recorded, key):
    """The Range header of each GET of ``key`` (None for a GET of the whole object)."""
    return [entry["headers"].get("Range") for entry in recorded()
            if entry["method"] == "GET" and entry["url"].split("?")[0].endswith("/" + key)]


@pytest.fixture
def s3_web(mysql_database, redis_url, s3_server, s3_storage_url, tmp_path, environ_clean):
    """The web app in this process, on MariaDB, Redis and the bucket. ``app.workers()``
    runs two `vexpenses worker` processes, given the AWS_* variables as on another host."""
    run = uuid.uuid4().hex
    settings = base_settings(mysql_database, "csv_import", **{
        "vexpenses.redis_url": redis_url, "vexpenses.auto_migrate": "true",
        "vexpenses.redis_prefix": f"test:{run}:", "vexpenses.tasks.queue": f"test:{run}:tasks",
        "vexpenses.storage_url": s3_storage_url,
        "vexpenses.upload_dir": str(tmp_path / "uploads")})
    wsgi = make_app(settings)
    registry = wsgi.registry
    app = webtest.TestApp(wsgi, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    app.storage_url = s3_storage_url
    _, app.token = make_user(registry, email="ana@example.com")
    app.workers = lambda: run_workers(registry.settings, tmp_path, count=2, **s3_server.env,
                                      VEXPENSES_CSV_IMPORT_CHUNK_BYTES="6000",
                                      VEXPENSES_CSV_IMPORT_BATCH_ROWS="50")
    try:
        yield app
    finally:
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()
        for key in registry.redis.scan_iter(match=settings["vexpenses.redis_prefix"] + "*"):
            registry.redis.delete(key)
        registry.redis.close()


def ended(app, import_id):
    def status():
        data = import_status(app, app.token, import_id).json["data"]
        return data if data["status"] in (1, 2) else None

    data = wait_for(status, 120)
    assert data, f"import {import_id} did not end"
    return data


def test_an_upload_imports_from_the_bucket_each_worker_reading_only_its_chunk(
        s3_web, s3_server, tmp_path):
    app, storage_url, token = s3_web, s3_web.storage_url, s3_web.token
    registry = app.app.registry
    rows = people(1200)
    rows[10:10] = [("Bad Row", "not-an-email", "1990-01-01")]
    rows[500:500] = [("Dup Row", "pessoa3@example.com", "1990-01-01")]
    rows.append(("Existing", "ana@example.com", "1990-01-01"))
    content = make_csv(rows)
    with app.workers(), s3_server.recording() as recorded:
        data = upload(app, token, content).json["data"]
        final = ended(app, data["id"])
        ranges = gets_of(recorded, bucket_and_prefix(storage_url)[1] + data["path"])
    assert (final["status"], final["total"], final["imported"], final["rejected"],
            final["duplicates"]) == (2, 1203, 1200, 1, 2)
    assert read_object(s3_server, storage_url, data["path"]) == content
    assert not (tmp_path / "uploads").exists()

    with registry.dbsession_factory() as db:
        chunks = db.execute(select(ImportChunk.start, ImportChunk.end)
                            .where(ImportChunk.import_id == data["id"])).all()
    assert len(chunks) > 5
    # The planner reads the file once (it is under 1 MiB: one GET); each chunk's
    # worker GETs its own bytes and no others. No GET goes without a Range.
    assert None not in ranges
    expected = {f"bytes=0-{len(content) - 1}"} | {f"bytes={start}-{end - 1}"
                                                   for start, end in chunks}
    assert set(ranges) == expected


def test_an_object_gone_before_the_workers_read_it_fails_its_import(s3_web, s3_server):
    data = upload(s3_web, s3_web.token, make_csv(people(5))).json["data"]
    bucket, prefix = bucket_and_prefix(s3_web.storage_url)
    s3_server.client().delete_object(Bucket=bucket, Key=prefix + data["path"])
    with s3_web.workers():  # started only now: the planning task waited in Redis
        final = ended(s3_web, data["id"])
    assert (final["status"], final["error"]) == (2, "The uploaded file is missing from storage.")


@pytest.fixture
def make_s3_app(make_testapp, s3_storage_url, tmp_path):
    """In one process (tasks in threads), on each backend, with the bucket."""
    def make(retention="0"):
        testapp = make_testapp(**{
            "vexpenses.storage_url": s3_storage_url,
            "vexpenses.upload_dir": str(tmp_path / "uploads"), **SMALL,
            "vexpenses.csv_import.max_upload_bytes": str(PART_BYTES + (1 << 20)),
            "vexpenses.csv_import.file_retention": retention})
        testapp.storage_url = s3_storage_url
        _, testapp.token = make_user(testapp.app.registry, email="ana@example.com")
        return testapp

    return make


@pytest.fixture
def s3_app(make_s3_app):
    return make_s3_app()


# A known leak outside the storage, with the local storage too: a large upload's
# request leaves a temporary file (webob's spooled body) unclosed. Collected
# here, within this test, so that it does not fail whichever test comes next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_too_large_upload_leaves_no_object_and_no_pending_upload(s3_app, s3_server):
    # Just over the limit: within the room the body limit leaves for the envelope,
    # so that the storage is the one to notice, with a part already sent.
    limit = PART_BYTES + (1 << 20)
    content = make_csv(people(250_000))[:limit + 1000]
    with s3_server.recording() as recorded:
        res = upload(s3_app, s3_app.token, content, status=413)
        calls = [(entry["method"], entry["url"].split("?", 1)[-1]) for entry in recorded()]
    assert res.json["status"] is False
    # A first part went up before the limit was passed, so this was a real abort.
    assert ("POST", "uploads") in calls
    assert any(method == "DELETE" and query.startswith("uploadId=") for method, query in calls)
    assert objects(s3_server, s3_app.storage_url) == set()
    assert pending_uploads(s3_server, s3_app.storage_url) == []
    with s3_app.app.registry.dbsession_factory() as db:
        assert db.scalars(select(Import)).all() == []
    del res
    gc.collect()


def test_a_binary_upload_is_refused_and_its_object_deleted(s3_app, s3_server):
    res = upload(s3_app, s3_app.token, b"Nome,E-mail\x00\x01" * 100, status=422)
    assert "binary" in res.json["errors"]["file"][0]
    assert objects(s3_server, s3_app.storage_url) == set()


def test_retention_removes_the_object_of_a_finished_import(s3_app, s3_server):
    data = upload(s3_app, s3_app.token, make_csv(people(9))).json["data"]
    final = finished_status(s3_app, s3_app.token, data["id"])
    assert (final["status"], final["imported"]) == (1, 9)
    # file_retention is 0: the finishing import queued the removal of its file.
    s3_app.app.registry.queue.drain()
    with s3_app.app.registry.dbsession_factory() as db:
        removed = wait_for(lambda: db.get(Import, data["id"], populate_existing=True)
                           .file_removed_at, 30)
    assert removed
    assert data["path"] not in objects(s3_server, s3_app.storage_url)


def test_the_cleanup_command_deletes_expired_objects_and_says_when_it_cannot(
        make_s3_app, s3_server, tmp_path):
    app = make_s3_app(retention="3600")
    data = upload(app, app.token, make_csv(people(2))).json["data"]
    finished_status(app, app.token, data["id"])
    settings = app.app.registry.settings

    def cleanup(endpoint_url):
        env = {**os.environ, **s3_server.env, "AWS_ENDPOINT_URL": endpoint_url,
               "VEXPENSES_DATABASE_URL": settings["vexpenses.database_url"],
               "VEXPENSES_PLUGINS": "csv_import", "VEXPENSES_JWT_SECRET": JWT_SECRET,
               "VEXPENSES_REDIS_URL": "", "VEXPENSES_STORAGE_URL": app.storage_url,
               "VEXPENSES_CSV_IMPORT_FILE_RETENTION": "0"}
        return subprocess.run([VEXPENSES, "import-cleanup", str(write_ini(tmp_path))],
                               env=env, capture_output=True, text=True, timeout=120)

    result = cleanup(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1, result.stderr
    assert "vexpenses import-cleanup: the storage is unavailable" in result.stderr
    assert "Traceback" not in result.stderr
    assert objects(s3_server, app.storage_url) == {data["path"]}
    result = cleanup(s3_server.endpoint_url)
    assert result.returncode == 0 and "files of 1 finished" in result.stdout, result.stderr
    assert objects(s3_server, app.storage_url) == set()


def test_check_says_whether_the_bucket_answers(s3_storage_url, tmp_path, monkeypatch,
                                               environ_clean):
    from vexpenses_core.check import run_check

    monkeypatch.setenv("VEXPENSES_DATABASE_URL", f"sqlite:///{tmp_path}/x.sqlite")
    monkeypatch.setenv("VEXPENSES_PLUGINS", "csv_import")
    monkeypatch.setenv("VEXPENSES_JWT_SECRET", JWT_SECRET)
    ini = str(write_ini(tmp_path))

    def check(storage_url):
        monkeypatch.setenv("VEXPENSES_STORAGE_URL", storage_url)
        out = io.StringIO()
        run_check(ini, out)
        return [line for line in out.getvalue().splitlines() if "storage s3://" in line]

    assert check(s3_storage_url) == [f"ok: the storage {s3_storage_url} answers"]
    missing = f"s3://never-made-{uuid.uuid4().hex[:12]}/x"
    assert check(missing) == [f"problem: the storage {missing}: NoSuchBucket (the AWS_* "
                              f"variables or ~/.aws give the credentials, region and endpoint)"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    [line] = check(s3_storage_url)
    assert line.startswith(f"problem: the storage {s3_storage_url}: Could not connect")


def test_an_unreachable_store_answers_503_in_the_envelope(s3_app, s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    res = upload(s3_app, s3_app.token, make_csv(people(3)), status=503)
    assert res.json == {"status": False, "message": "The service is temporarily unavailable.",
                        "errors": STORAGE_DOWN}
    assert res.headers["Retry-After"] == "10"
    with s3_app.app.registry.dbsession_factory() as db:
        assert db.scalars(select(Import)).all() == []


def test_large_files_go_up_in_parts_and_read_back_by_range(s3_storage_url, s3_server):
    storage = S3UploadStorage({"vexpenses.storage_url": s3_storage_url}, 100 << 20)
    content = os.urandom(2 * PART_BYTES + 12345)
    with s3_server.recording() as recorded:
        stored = storage.save(io.BytesIO(content), "big.csv")
        parts = [entry for entry in recorded()
                 if entry["method"] == "PUT" and "partNumber=" in entry["url"]]
    assert len(parts) == 3
    assert re.fullmatch(r"csv_import/\d{4}/\d{2}/[0-9a-f]{32}\.csv", stored.path)
    assert (stored.size, stored.sha256) == (len(content), hashlib.sha256(content).hexdigest())
    assert stored.head == content[:64 * 1024]
    assert read_object(s3_server, s3_storage_url, stored.path) == content
    with s3_server.recording() as recorded, storage.open(stored.path) as fileobj:
        fileobj.seek(PART_BYTES - 10)
        assert fileobj.read(20) == content[PART_BYTES - 10:PART_BYTES + 10]
        assert fileobj.read(5) == content[PART_BYTES + 10:PART_BYTES + 15]  # read ahead
        assert fileobj.tell() == PART_BYTES + 15
        fileobj.seek(-100_000, os.SEEK_END)
        assert fileobj.read(200_000) == content[-100_000:]
        assert fileobj.read(10) == b""
        ranges = gets_of(recorded, bucket_and_prefix(s3_storage_url)[1] + stored.path)
    assert ranges == [f"bytes={PART_BYTES - 10}-{PART_BYTES - 10 + READ_AHEAD - 1}",
                      f"bytes={len(content) - 100_000}-{len(content) - 1}"]
    storage.delete(stored.path)
    storage.delete(stored.path)  # gone already: no error
    with pytest.raises(FileNotFoundError):
        storage.open(stored.path)


def test_a_bad_storage_url_or_missing_boto3_stops_start_up(tmp_path, monkeypatch,
                                                          environ_clean, s3_storage_url):
    database = f"sqlite:///{tmp_path}/x.sqlite"
    with pytest.raises(ConfigurationError, match=r"VEXPENSES_STORAGE_URL.*not a valid bucket"):
        make_app(base_settings(database, "csv_import",
                               **{"vexpenses.storage_url": "s3://Not_A_Bucket/x"}))
    monkeypatch.setitem(sys.modules, "boto3", None)  # what an install without it raises
    with pytest.raises(ConfigurationError,
                       match=re.escape("pip install vexpenses-csv-import[s3]")):
        make_app(base_settings(database, "csv_import",
                               **{"vexpenses.storage_url": s3_storage_url}))
