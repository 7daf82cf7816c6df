"""CSV import benchmark: end-to-end rate against LOAD DATA and the original app's method.

For each size (100,000 and 1,000,000 users by default) it:

1. writes a CSV of that many users (fixed seed, once, under --data-dir);
2. empties the users and imports tables of the benchmark database;
3. uploads the file through the real API (WebTest, in this process) with the
   Redis broker, and times from the upload's 201 to status 1, while
   ``vexpenses worker --workers N`` processes run the import; it samples each
   worker process's peak RSS (VmHWM) from /proc;
4. loads the same file with ``LOAD DATA LOCAL INFILE`` into a table of the
   users table's shape: the ceiling.

Then it runs the original app's method on --original-rows rows: per row a
SELECT for the e-mail, a Redis write of the progress and a bcrypt hash (cost
12) of a shared password, with INSERTs of 100 rows. It prints the rates and
the ratios, and PASS or FAIL for the targets; it asserts nothing.

    .venv/bin/python benchmarks/bench_import.py [--sizes 100000,1000000] [--workers 8]

MariaDB on 127.0.0.1:3306 (root, no password, local_infile ON) and Redis on
127.0.0.1:6379 are needed; the data goes to the database vexpenses_bench_import
and Redis db 14.
"""

import argparse
import datetime
import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import bcrypt
import pymysql
import redis
import webtest

from vexpenses_core.testing import worker_pids, write_ini

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
SERVER = "mysql+pymysql://root@127.0.0.1:3306"
JWT_SECRET = "benchmark-secret-that-is-long-enough-for-hs256-0123456789"
DOMAINS = ["gmail.com", "hotmail.com", "bol.com.br", "uol.com.br", "ig.com.br", "yahoo.com.br",
           "outlook.com", "terra.com.br", "empresa.com.br", "example.org"]
FIRST = ["Ana", "Bruno", "Carla", "Diego", "Eduarda", "Felipe", "Gabriela", "Heitor", "Isabela",
         "João", "Larissa", "Marcos", "Natália", "Otávio", "Paula", "Rafael", "Sofia", "Tiago"]
LAST = ["Silva", "Souza", "Oliveira", "Santos", "Pereira", "Lima", "Carvalho", "Ferreira",
        "Gomes", "Ribeiro", "Almeida", "Costa", "da Mota", "Conceição", "Peixoto", "Viana"]
# Extra settings for the worker processes, from the command line.
WORKER_ENV = {}


def write_csv(path, count):
    """Users like the sample file's: name, unique e-mail, birth date; a few quoted names."""
    if path.exists():
        return
    rng = random.Random(count)
    start = datetime.date(1940, 1, 1).toordinal()
    tmp = path.with_suffix(".part")
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write("Nome,E-mail,Data de nascimento\n")
        lines = []
        for i in range(count):
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
            if i % 50 == 0:
                name = f'"{rng.choice(LAST)}, {name}"'
            email = f"{name.split()[-1].strip(chr(34)).lower()}.{i}@{rng.choice(DOMAINS)}"
            email = email.replace("ã", "a").replace("ç", "c")
            birth = datetime.date.fromordinal(start + rng.randrange(25000)).isoformat()
            lines.append(f"{name},{email},{birth}\n")
            if len(lines) == 10000:
                out.writelines(lines)
                lines = []
        out.writelines(lines)
    tmp.rename(path)


def connect(database=None, **kwargs):
    return pymysql.connect(host="127.0.0.1", user="root", database=database,
                           charset="utf8mb4", autocommit=True, **kwargs)


def make_app(database_url, redis_url, prefix, queue, upload_dir, plugins="csv_import"):
    from vexpenses_core import make_app as core_make_app
    from vexpenses_core.settings import ENV_SETTINGS

    for var in ENV_SETTINGS.values():
        os.environ.pop(var, None)
    settings = {
        "vexpenses.env": "testing",
        "vexpenses.database_url": database_url,
        "vexpenses.redis_url": redis_url,
        "vexpenses.plugins": plugins,
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.redis_prefix": prefix,
        "vexpenses.tasks.queue": queue,
        "vexpenses.upload_dir": upload_dir,
        "vexpenses.auto_migrate": "true",
        "vexpenses.argon2.time_cost": "1",
        "vexpenses.argon2.memory_cost": "8192",
        "vexpenses.argon2.parallelism": "1",
    }
    return core_make_app(settings)


class PeakRSS(threading.Thread):
    """Samples the peak RSS (VmHWM) of every worker process of a supervisor."""

    def __init__(self, supervisor_pid):
        super().__init__(daemon=True)
        self.supervisor_pid = supervisor_pid
        self.peaks = {}
        self.stopped = threading.Event()

    def workers(self):
        return worker_pids(self.supervisor_pid)

    @staticmethod
    def read(pid, field):
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
        return 0

    def sample(self):
        for pid in self.workers():
            try:
                kib = self.read(pid, "VmHWM:")
            except FileNotFoundError:
                continue
            self.peaks[pid] = max(self.peaks.get(pid, 0), kib)

    def run(self):
        while not self.stopped.wait(0.2):
            self.sample()


def start_workers(settings, count, tmp):
    from vexpenses_core.settings import environ_for

    ini = write_ini(tmp, level="WARNING")

    env = {**os.environ, **environ_for(settings), "VEXPENSES_AUTO_MIGRATE": "false",
           **WORKER_ENV}
    log = open(tmp / f"workers-{count}.log", "w")  # noqa: SIM115 - closed by stop_workers
    proc = subprocess.Popen([str(BIN / "vexpenses"), "worker", str(ini), "--workers", str(count)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log = log
    rss = PeakRSS(proc.pid)
    deadline = time.monotonic() + 120
    while len(rss.workers()) < count:
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"workers did not start; see {log.name}")
        time.sleep(0.2)
    # Ready when every worker has finished starting: its CPU time stops growing.
    last = None
    while True:
        now = [cpu_ticks(pid) for pid in rss.workers()]
        if now == last or time.monotonic() > deadline:
            break
        last = now
        time.sleep(0.5)
    # Start-up is not the import: the core hashes a dummy argon2 password
    # (64 MiB by default) when a worker starts. Reset each peak to the RSS now.
    for pid in rss.workers():
        pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")
    rss.startup = {pid: rss.read(pid, "VmHWM:") for pid in rss.workers()}
    rss.start()
    return proc, rss


def cpu_ticks(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def stop_workers(proc, rss):
    rss.sample()
    rss.stopped.set()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    proc.log.close()


def reset_tables(database):
    conn = connect(database)
    with conn.cursor() as cur:
        cur.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in ("import_errors", "import_chunks", "imports", "refresh_tokens",
                      "auth_sessions", "password_resets", "users"):
            cur.execute(f"TRUNCATE TABLE {table}")
        cur.execute("SET FOREIGN_KEY_CHECKS = 1")
    conn.close()


def bench_import(app, path, database, workers, tmp):
    """Seconds from the upload's 201 to status 1, the final data, and worker peak RSS."""
    from vexpenses_core.testing import make_user

    reset_tables(database)
    registry = app.registry
    # An admin: the file is far over a user's daily rows quota.
    _, token = make_user(registry, email="bench@vexpenses.test", is_admin=True)
    testapp = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    proc, rss = start_workers(registry.settings, workers, tmp)
    try:
        load = os.getloadavg()[0]
        cpu_before = {pid: cpu_ticks(pid) for pid in rss.workers()}
        server_before = server_ticks()
        started = time.monotonic()
        # No invitations: with the mailer enabled they would be another benchmark.
        res = testapp.post("/api/v1/user/upload", params={"send_invitations": "false"},
                           upload_files=[("file", path.name, path.read_bytes())],
                           headers={"Authorization": f"Bearer {token}"}, status=201)
        accepted = time.monotonic()
        url = f"/api/v1/user/import-status/{res.json['data']['id']}"
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            data = testapp.get(url, headers={"Authorization": f"Bearer {token}"}).json["data"]
            if data["status"] in (1, 2):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the import did not finish: {data}; see the worker log")
        done = time.monotonic()
        worker_ticks = sum(cpu_ticks(pid) - ticks for pid, ticks in cpu_before.items())
        server = server_ticks() - server_before
    finally:
        stop_workers(proc, rss)
    peaks = sorted(kib / 1024 for kib in rss.peaks.values())
    rows = data["total"] or 1
    per_row = 1e6 / os.sysconf("SC_CLK_TCK") / rows
    return {"upload_s": accepted - started, "import_s": done - accepted, "data": data,
            "peak_rss_mb": peaks, "load": load, "worker_cpu_us": worker_ticks * per_row,
            "server_cpu_us": server * per_row}


def bench_in_process(app, path, database):
    """The import's worker side in this process, one chunk after another, timed in CPU.

    No worker processes, no queue: the plan and every chunk run here, as a
    worker runs them (the app's objects frozen out of the collector, as
    there). The CPU time is this process's alone, so the figure holds on a
    busy machine, and a profiler can be put around it.
    """
    import gc

    from pyramid.scripting import prepare
    from vexpenses_csv_import.models import Import
    from vexpenses_csv_import.processing import ImportProcessor

    from vexpenses_core.tasks.runner import make_task_request
    from vexpenses_core.testing import make_user
    from vexpenses_core.transactions import in_transaction

    reset_tables(database)
    registry = app.registry
    _, token = make_user(registry, email="bench@vexpenses.test", is_admin=True)
    testapp = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    res = testapp.post("/api/v1/user/upload", upload_files=[("file", path.name,
                                                             path.read_bytes())],
                       headers={"Authorization": f"Bearer {token}"}, status=201)
    import_id = res.json["data"]["id"]

    def request():
        req = make_task_request(registry)
        prepare(request=req, registry=registry)
        return req

    gc.freeze()
    started = time.process_time()
    req = request()
    in_transaction(req.tm, lambda: ImportProcessor(req).plan(import_id))
    planned = time.process_time()
    req = request()
    chunks = in_transaction(req.tm, lambda: req.dbsession.get(Import, import_id).chunks_total)
    for index in range(chunks):
        req = request()
        ImportProcessor(req).process_chunk(import_id, index, lambda index: None)
    done = time.process_time()
    req = request()
    counts = in_transaction(req.tm, lambda: req.dbsession.get(Import, import_id).counts())
    return {"plan_us": (planned - started) * 1e6 / counts["total"],
            "chunks_us": (done - planned) * 1e6 / counts["total"], "chunks": chunks,
            "counts": counts}


def server_ticks():
    """CPU ticks of the local mariadbd/mysqld so far (0 when it is not on this host)."""
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text.split("(", 1)[1].split(")", 1)[0] in ("mariadbd", "mysqld"):
            return cpu_ticks(int(stat.parent.name))
    return 0


def bench_ceiling(path, database):
    conn = connect(database, local_infile=True)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_ceiling_users")
        cur.execute("CREATE TABLE bench_ceiling_users LIKE users")
        started = time.monotonic()
        cur.execute(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE bench_ceiling_users "
            "CHARACTER SET utf8mb4 FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' "
            "LINES TERMINATED BY '\\n' IGNORE 1 LINES (name, email, birth_date) "
            "SET created_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6), is_admin = 0"
        )
        seconds = time.monotonic() - started
        cur.execute("SELECT COUNT(*) FROM bench_ceiling_users")
        rows = cur.fetchone()[0]
        cur.execute("DROP TABLE bench_ceiling_users")
    conn.close()
    return seconds, rows


def bench_original(path, database, redis_url, rows):
    """The original app's job: per row a SELECT, a Redis write and bcrypt(12); INSERTs of 100."""
    import csv

    reset_tables(database)
    conn = connect(database)
    client = redis.Redis.from_url(redis_url)
    key = f"bench:original:{uuid.uuid4().hex}"
    shared_password = b"password"
    started = time.monotonic()
    pending = []
    with open(path, encoding="utf-8", newline="") as source, conn.cursor() as cur:
        reader = csv.reader(source)
        next(reader)
        for done, (name, email, birth) in enumerate(reader, start=1):
            if done > rows:
                break
            cur.execute("SELECT id FROM users WHERE email = %s", (email,))
            if cur.fetchone() is None:
                hashed = bcrypt.hashpw(shared_password, bcrypt.gensalt(12)).decode()
                now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
                pending.append((name, email, hashed, birth, 0, now, now))
            client.set(key, json.dumps({"processed": done, "total": rows}))
            if len(pending) == 100:
                cur.executemany("INSERT INTO users (name, email, password_hash, birth_date, "
                                "is_admin, created_at, updated_at) VALUES "
                                "(%s, %s, %s, %s, %s, %s, %s)", pending)
                pending = []
        if pending:
            cur.executemany("INSERT INTO users (name, email, password_hash, birth_date, "
                            "is_admin, created_at, updated_at) VALUES "
                            "(%s, %s, %s, %s, %s, %s, %s)", pending)
    seconds = time.monotonic() - started
    client.delete(key)
    client.close()
    conn.close()
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--compare-workers", type=int, default=1,
                        help="also import the smallest size with this many workers (0: skip)")
    parser.add_argument("--original-rows", type=int, default=1000)
    parser.add_argument("--data-dir", default=str(pathlib.Path(tempfile.gettempdir())
                                                  / "vexpenses-bench-import"))
    parser.add_argument("--database", default="vexpenses_bench_import")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--threads", type=int, help="vexpenses.worker.threads of the workers")
    parser.add_argument("--chunk-bytes", type=int, help="vexpenses.csv_import.chunk_bytes")
    parser.add_argument("--batch-rows", type=int, help="vexpenses.csv_import.batch_rows")
    parser.add_argument("--parallel-chunks", type=int,
                        help="vexpenses.csv_import.parallel_chunks (0: no cap)")
    parser.add_argument("--plugins", default="csv_import",
                        help="vexpenses.plugins of the app and the workers, e.g. "
                             "'csv_import audit_log mailer' as in production.ini")
    parser.add_argument("--in-process", action="store_true",
                        help="only the workers' CPU per row, measured in this process")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    for name, var in (("threads", "VEXPENSES_WORKER_THREADS"),
                      ("chunk_bytes", "VEXPENSES_CSV_IMPORT_CHUNK_BYTES"),
                      ("batch_rows", "VEXPENSES_CSV_IMPORT_BATCH_ROWS"),
                      ("parallel_chunks", "VEXPENSES_CSV_IMPORT_PARALLEL_CHUNKS")):
        if getattr(args, name) is not None:
            WORKER_ENV[var] = str(getattr(args, name))
    sizes = [int(size) for size in args.sizes.split(",")]
    data_dir = pathlib.Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)

    conn = connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {args.database} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        cur.execute("SELECT VERSION(), @@innodb_buffer_pool_size")
        version, pool = cur.fetchone()
    conn.close()
    run = uuid.uuid4().hex[:8]
    upload_dir = data_dir / "uploads"
    app = make_app(f"{SERVER}/{args.database}?charset=utf8mb4", args.redis_url,
                   f"bench:{run}:", f"bench:{run}:tasks", str(upload_dir), args.plugins)
    options = app.registry.csv_import_options
    threads = args.threads or app.registry.settings["vexpenses.worker.threads"]
    print(f"vexpenses CSV import benchmark, {datetime.date.today()}, {os.cpu_count()} CPUs, "
          f"MariaDB {version} (buffer pool {pool // 2**20} MiB), --workers {args.workers} x "
          f"{threads} threads, chunk {args.chunk_bytes or options['chunk_bytes']} bytes, "
          f"batch {args.batch_rows or options['batch_rows']} rows, parallel chunks "
          f"{WORKER_ENV.get('VEXPENSES_CSV_IMPORT_PARALLEL_CHUNKS', options['parallel_chunks'])}",
          flush=True)

    if args.in_process:
        for size in sizes:
            path = data_dir / f"users-{size}.csv"
            write_csv(path, size)
            cpu = bench_in_process(app, path, args.database)
            assert cpu["counts"]["imported"] == size, cpu
            print(f"{size:>9,} rows in one process: CPU per row {cpu['plan_us']:.2f} us "
                  f"planning + {cpu['chunks_us']:.2f} us in {cpu['chunks']} chunks = "
                  f"{cpu['plan_us'] + cpu['chunks_us']:.2f} us", flush=True)
        reset_tables(args.database)
        app.registry.redis.delete(app.registry.settings["vexpenses.tasks.queue"])
        app.registry.queue.close()
        return

    results = {"sizes": {}}
    for size in sizes:
        path = data_dir / f"users-{size}.csv"
        write_csv(path, size)
        run_result = bench_import(app, path, args.database, args.workers, data_dir)
        data = run_result["data"]
        assert data["status"] == 1 and data["imported"] == size, data
        ceiling_s, ceiling_rows = bench_ceiling(path, args.database)
        assert ceiling_rows == size
        rate = size / run_result["import_s"]
        ceiling = size / ceiling_s
        results["sizes"][size] = {**run_result, "rate": rate, "ceiling_rate": ceiling,
                                  "ceiling_s": ceiling_s}
        print(f"{size:>9,} rows: import {run_result['import_s']:.2f} s = {rate:,.0f} rows/s "
              f"(upload {run_result['upload_s']:.2f} s, {path.stat().st_size / 2**20:.1f} MiB); "
              f"LOAD DATA {ceiling_s:.2f} s = {ceiling:,.0f} rows/s; ratio {rate / ceiling:.2f}; "
              f"worker peak RSS {min(run_result['peak_rss_mb']):.0f}-"
              f"{max(run_result['peak_rss_mb']):.0f} MB", flush=True)
        print(f"{'':>16}CPU per row: workers {run_result['worker_cpu_us']:.1f} us, "
              f"database server {run_result['server_cpu_us']:.1f} us (it serves other "
              f"clients too); load average {run_result['load']:.1f} at the start", flush=True)

    if args.compare_workers:
        size = sizes[0]
        path = data_dir / f"users-{size}.csv"
        few = bench_import(app, path, args.database, args.compare_workers, data_dir)
        results["compare"] = {"workers": args.compare_workers, **few,
                              "rate": size / few["import_s"]}
        print(f"{size:>9,} rows with --workers {args.compare_workers}: "
              f"{few['import_s']:.2f} s = {size / few['import_s']:,.0f} rows/s; --workers "
              f"{args.workers} is {few['import_s'] / results['sizes'][size]['import_s']:.2f}x "
              f"faster", flush=True)

    if args.original_rows:
        path = data_dir / f"users-{sizes[0]}.csv"
        seconds = bench_original(path, args.database, args.redis_url, args.original_rows)
        original = args.original_rows / seconds
        results["original_rate"] = original
        print(f"original method on {args.original_rows:,} rows: {seconds:.1f} s = "
              f"{original:,.1f} rows/s", flush=True)
    reset_tables(args.database)

    print()
    print("| rows | import s | rows/s | LOAD DATA rows/s | vs ceiling | vs original | "
          "worker peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for size, result in results["sizes"].items():
        vs_original = (f"{result['rate'] / results['original_rate']:,.0f}x"
                       if "original_rate" in results else "-")
        print(f"| {size:,} | {result['import_s']:.2f} | {result['rate']:,.0f} | "
              f"{result['ceiling_rate']:,.0f} | {result['rate'] / result['ceiling_rate']:.2f} | "
              f"{vs_original} | {min(result['peak_rss_mb']):.0f}-"
              f"{max(result['peak_rss_mb']):.0f} |")
    print()
    for size, result in results["sizes"].items():
        ratio = result["rate"] / result["ceiling_rate"]
        print(f"{'PASS' if ratio >= 0.6 else 'FAIL'}: {size:,} rows at {ratio:.2f} x the "
              f"LOAD DATA ceiling (target >= 0.60)")
    peaks = {size: max(result["peak_rss_mb"]) for size, result in results["sizes"].items()}
    print(f"{'PASS' if max(peaks.values()) <= 150 else 'FAIL'}: worker peak RSS at most "
          f"{max(peaks.values()):.0f} MB (target <= 150)")
    if len(peaks) > 1:
        small, large = peaks[min(peaks)], peaks[max(peaks)]
        print(f"{'PASS' if large <= small * 1.10 else 'FAIL'}: peak RSS {large:.0f} MB at "
              f"{max(peaks):,} rows vs {small:.0f} MB at {min(peaks):,} rows "
              f"(+{(large / small - 1) * 100:.1f}%, target <= +10%)")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    app.registry.queue.close()


if __name__ == "__main__":
    main()
