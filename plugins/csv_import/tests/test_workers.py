"""Real `vexpenses worker` processes on real Redis: a worker killed with SIGKILL in
the middle of an import, and the progress keys lost, still give exact counts."""

import os
import signal

import pytest
from sqlalchemy import func, select
from vexpenses_csv_import.models import Import, ImportChunk, ImportRowError
from vexpenses_csv_import.testing import import_status, make_csv, people, upload

from vexpenses_core.models import User
from vexpenses_core.redis_client import redis_key
from vexpenses_core.testing import make_user, run_workers, wait_for, worker_pids

SETTINGS = {"chunk_bytes": "6000", "batch_rows": "20", "batch_delay": "0.05"}


# No cap: every chunk queued at once, so both threads of any worker are busy; or
# two chunks at once, each queued by the one before, with every worker killed.
@pytest.fixture(params=["0", "2"], ids=["all-chunks-kill-one", "two-chunks-kill-all"])
def worker_app(request, make_testapp, redis_url, tmp_path):
    uploads = str(tmp_path / "uploads")
    settings = {**SETTINGS, "parallel_chunks": request.param}
    testapp = make_testapp(**{"vexpenses.redis_url": redis_url, "vexpenses.upload_dir": uploads,
                              **{f"vexpenses.csv_import.{k}": v for k, v in settings.items()}})
    env = {f"VEXPENSES_CSV_IMPORT_{k.upper()}": v for k, v in settings.items()}
    with run_workers(testapp.app.registry.settings, tmp_path, count=2,
                     VEXPENSES_UPLOAD_DIR=uploads, **env) as proc:
        testapp.worker = proc
        testapp.log = tmp_path / "worker.log"
        yield testapp


def test_sigkill_mid_import_and_lost_redis_keys_give_exact_counts(worker_app):
    registry = worker_app.app.registry
    user_id, token = make_user(registry, email="ana@example.com")
    rows = people(1500)
    for i in range(0, 1500, 150):  # bad rows and duplicates spread over every chunk
        rows.insert(i, ("Bad Row", f"bad{i}", "1990-01-01"))
        rows.insert(i + 75, ("Dup Row", f"pessoa{i}@example.com", "1990-01-01"))
    rows.append(("Existing", "ana@example.com", "1990-01-01"))
    res = upload(worker_app, token, make_csv(rows))
    import_id = res.json["data"]["id"]
    key = redis_key(registry, "csv_import", "progress", import_id)

    def status():
        return import_status(worker_app, token, import_id).json["data"]

    seen = [status()]
    assert wait_for(lambda: seen.append(status()) or 15 < seen[-1]["progress"] < 60, 60), seen
    pids = worker_pids(worker_app.worker.pid)
    capped = registry.csv_import_options["parallel_chunks"] > 0
    for victim in pids if capped else pids[:1]:
        os.kill(victim, signal.SIGKILL)  # in the middle of a chunk, or two
    registry.redis.delete(key)
    lost_again = False
    while seen[-1]["status"] not in (1, 2):
        seen.append(status())
        if not lost_again and seen[-1]["progress"] > 70:
            registry.redis.delete(key)
            lost_again = True
        assert len(seen) < 2000, "the import did not finish"
        wait_for(lambda: False, 0.05)
    final = seen[-1]
    assert final["status"] == 2
    assert (final["imported"], final["rejected"], final["duplicates"]) == (1500, 10, 11)
    assert final["total"] == final["processed"] == 1521
    progress = [data["progress"] for data in seen]
    assert progress == sorted(progress) and progress[-1] == 100, progress

    db = registry.dbsession_factory()
    try:
        assert db.scalar(select(func.count()).select_from(User)) == 1 + 1500
        assert db.scalar(select(func.count()).select_from(ImportRowError)) == 21
        chunks = db.scalars(select(ImportChunk).where(ImportChunk.import_id == import_id)).all()
        assert len(chunks) > 4 and all(chunk.done for chunk in chunks)
        assert sum(chunk.imported for chunk in chunks) == 1500
        assert db.get(Import, import_id).chunks_done == len(chunks)
    finally:
        db.close()
    assert "redelivering task message" in worker_app.log.read_text()
    assert wait_for(lambda: len(worker_pids(worker_app.worker.pid)) == 2, 20)
