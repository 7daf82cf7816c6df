"""Accounts benchmark: the real app under waitress, against 1,000,000 users.

    .venv/bin/python benchmarks/accounts.py [--seconds 10] [--reseed]

1. Creates the MariaDB database ``vexpenses_bench`` when missing, migrates
   it, and seeds 1,000,000 users with MariaDB's SEQUENCE engine (skipped when
   the table already holds them, unless ``--reseed``).  One user, id 1, has a
   real argon2 password; the others have none.
2. Serves the real app (``make_app``) and a bare Pyramid "hello" view, each
   in its own waitress subprocess (threads=8) on 127.0.0.1.
3. Loads each endpoint over loopback with a fixed number of keep-alive
   connections (8) for ``--seconds`` after a short warm-up, and reports
   req/s, p50 and p99 latency, and req/s as a fraction of the hello view's.
4. Prints PASS/FAIL for the two targets (never asserts):
   ``GET /me`` req/s >= 0.5 x hello, and last page p50 <= 3 x first page p50.

The load generator is wrk when it is installed (``apt-get install -y wrk``)
and a small asyncio client otherwise; ``--client`` chooses.  Both use one
thread, so that on a 2-core machine the client leaves the server a core.
"""

import argparse
import asyncio
import base64
import datetime
import json
import math
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/vexpenses_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
JWT_SECRET = "vexpenses-benchmark-secret-0123456789abcdef0123456789"
BENCH_EMAIL = "bench@vexpenses.test"
BENCH_PASSWORD = "benchmark-password-1"
BENCH_NAME = "Benchmark User"
USERS_VERSION_KEY = "vexpenses:users:version"  # see UserService.users_changed


# -- settings and seeding ---------------------------------------------------


def app_settings(args):
    """The app's settings: testing env, no rate limit, default argon2 parameters."""
    return {
        "vexpenses.env": "testing",
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.database_url": args.database_url,
        "vexpenses.redis_url": args.redis_url,
        "vexpenses.ratelimit.enabled": "false",
        "vexpenses.auto_migrate": "false",
        "vexpenses.plugins": "",
        # The run takes a few minutes; the token from the one login must last.
        "vexpenses.access_token_seconds": "3600",
    }


def scrub_environment():
    """VEXPENSES_* variables override settings; the benchmark uses only its own."""
    from vexpenses_core.settings import ENV_SETTINGS

    for var in ENV_SETTINGS.values():
        if os.environ.pop(var, None) is not None:
            print(f"note: ignoring {var} from the environment")


def create_database(database_url):
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    name = url.database
    if not re.fullmatch(r"[A-Za-z0-9_]+", name or ""):
        raise SystemExit(f"unexpected database name {name!r}")
    engine = create_engine(url.set(database=""))
    with engine.begin() as conn:
        conn.execute(text(
            f"CREATE DATABASE IF NOT EXISTS `{name}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
    engine.dispose()


def build_registry(settings):
    from vexpenses_core import make_app
    from vexpenses_core.migrate import upgrade

    app = make_app(settings)
    registry = app.registry
    upgrade(registry)
    return registry


def seed(registry, users, reseed):
    """Make sure ``users`` users exist, id 1 being the one that can log in."""
    from pyramid.scripting import prepare
    from sqlalchemy import text

    from vexpenses_core.accounts.interfaces import IPasswordHasher

    engine = registry.dbengine
    env = prepare(registry=registry)
    hasher = env["request"].find_service(IPasswordHasher)  # one per process
    env["closer"]()
    with engine.connect() as conn:
        present = conn.execute(text("SELECT COUNT(*) FROM users")).scalar()
        known = conn.execute(
            text("SELECT id, password_hash FROM users WHERE email = :email"),
            {"email": BENCH_EMAIL},
        ).first()
    if present >= users and known is not None and not reseed:
        print(f"seed: {present:,} users already there (use --reseed to start over)")
        if not hasher.verify(known.password_hash, BENCH_PASSWORD):
            with engine.begin() as conn:
                conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                             {"h": hasher.hash(BENCH_PASSWORD), "id": known.id})
        return present

    print(f"seed: inserting {users:,} users ...", end=" ", flush=True)
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    with engine.begin() as conn:
        conn.execute(text("SET SESSION foreign_key_checks = 0, unique_checks = 0"))
        for table in ("refresh_tokens", "auth_sessions", "password_resets", "users"):
            conn.execute(text(f"TRUNCATE TABLE {table}"))
        conn.execute(
            text(
                "INSERT INTO users (id, name, email, password_hash, birth_date, is_admin,"
                " created_at, updated_at)"
                " VALUES (1, :name, :email, :hash, '1990-01-01', 0, :now, :now)"
            ),
            {"name": BENCH_NAME, "email": BENCH_EMAIL,
             "hash": hasher.hash(BENCH_PASSWORD), "now": now},
        )
        # Ids 2..N, with distinct e-mails, birth dates spread over 50 years and
        # creation times one second apart.
        conn.execute(
            text(
                "INSERT INTO users (id, name, email, password_hash, birth_date, is_admin,"
                " created_at, updated_at)"
                " SELECT seq, CONCAT('Bench User ', seq),"
                " CONCAT('user', seq, '@bench.vexpenses.test'), NULL,"
                " DATE('1950-01-01') + INTERVAL (seq MOD 18262) DAY, 0,"
                " :now - INTERVAL (:n - seq) SECOND, :now - INTERVAL (:n - seq) SECOND"
                f" FROM seq_2_to_{int(users)}"
            ),
            {"now": now, "n": users},
        )
        conn.execute(text("SET SESSION foreign_key_checks = 1, unique_checks = 1"))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE TABLE users"))
    print(f"done in {time.perf_counter() - started:.1f} s")
    return users


def reset_between_runs(registry):
    """Logins of earlier runs are dropped; cached user counts are invalidated."""
    from sqlalchemy import text

    with registry.dbengine.begin() as conn:
        conn.execute(text("SET SESSION foreign_key_checks = 0"))
        conn.execute(text("TRUNCATE TABLE refresh_tokens"))
        conn.execute(text("TRUNCATE TABLE auth_sessions"))
        conn.execute(text("SET SESSION foreign_key_checks = 1"))
    registry.redis.incr(USERS_VERSION_KEY)


def cursor_after(last_id):
    """A cursor as the app makes them: urlsafe base64 of {"after": id}, unpadded."""
    try:
        from vexpenses_core.accounts.services import encode_cursor
    except ImportError:  # the services moved; this is the documented format
        def encode_cursor(value):
            raw = json.dumps({"after": value}).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return encode_cursor(last_id)


# -- servers ----------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A waitress subprocess; its log goes to a file shown when it fails."""

    def __init__(self, name, argv, port, logdir, env=None):
        self.name = name
        self.port = port
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=env, cwd=ROOT)

    def wait_ready(self, path, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2)
                return
            except urllib.error.HTTPError:
                return  # it answered
            except OSError:
                time.sleep(0.2)
        self.stop()
        with open(self.log_path, errors="replace") as fh:
            tail = fh.read()[-3000:]
        raise SystemExit(f"{self.name} server did not start; its log:\n{tail}")

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def serve_app(port, threads):
    """Entry point of the app subprocess (``--serve-app``)."""
    sys.path.insert(0, HERE)
    from hello_app import serve

    from vexpenses_core import make_app

    settings = json.loads(os.environ["VEXPENSES_BENCH_SETTINGS"])
    serve(make_app(settings), "127.0.0.1", port, threads)


# -- CPU accounting (Linux /proc) ----------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        return None


def find_database_pid():
    """mariadbd's pid, to charge it its CPU time per request (None if not local)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as fh:
                    if fh.read().strip() in ("mariadbd", "mysqld"):
                        return int(entry)
            except OSError:
                continue
    return None


def machine_cpu_seconds():
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
    except OSError:
        return None
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


class CpuMeter:
    """CPU used during one measurement by the server, the database and the client."""

    def __init__(self, server, db_pid):
        self.server = server
        self.db_pid = db_pid

    def __enter__(self):
        self.start = self._sample()
        return self

    def __exit__(self, *exc):
        self.end = self._sample()

    def _sample(self):
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "server": self.server.cpu_seconds(),
            "db": process_cpu_seconds(self.db_pid) if self.db_pid else None,
            "client": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
            "machine": machine_cpu_seconds(),
        }

    def delta(self, name):
        a, b = self.start[name], self.end[name]
        if a is None or b is None:
            return None
        return b - a

    def other_share(self, wall):
        """CPU used by everything else on the machine, in cores (background noise)."""
        machine = self.delta_machine()
        if machine is None:
            return None
        ours = sum(self.delta(n) or 0 for n in ("server", "db", "client"))
        return max(machine - ours, 0) / wall

    def delta_machine(self):
        a, b = self.start["machine"], self.end["machine"]
        if a is None or b is None:
            return None
        return b[0] - a[0]


# -- load generators ----------------------------------------------------------


class Target:
    def __init__(self, label, method, path, headers=None, body=None, seconds=None,
                 expect=(200,)):
        self.label = label
        self.method = method
        self.path = path
        self.headers = dict(headers or {})
        self.body = body
        self.seconds = seconds
        self.expect = expect

    def raw_request(self, port):
        body = self.body.encode() if self.body else b""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                 "User-Agent: vexpenses-bench", "Accept: application/json"]
        lines += [f"{k}: {v}" for k, v in self.headers.items()]
        if body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Result:
    def __init__(self, label, requests, seconds, p50, p99, errors, client):
        self.label = label
        self.requests = requests
        self.seconds = seconds
        self.rps = requests / seconds if seconds else 0.0
        self.p50 = p50  # ms
        self.p99 = p99
        self.errors = errors
        self.client = client
        self.cpu = {}
        self.other_cores = None


def percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    index = max(0, math.ceil(q / 100 * len(sorted_values)) - 1)
    return sorted_values[index]


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


class _Load:
    """Shared state of one asyncio load run."""

    def __init__(self, request, expect):
        self.request = request
        self.expect = expect
        self.running = True
        self.measuring = False
        self.latencies = []
        self.errors = 0
        self.window_end = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection sending the next request as soon as one is answered."""

    def __init__(self, load, lost):
        self.load = load
        self.lost = lost
        self.buffer = bytearray()
        self.need = None
        self.status = 0
        self.sent_at = 0.0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        self.sent_at = time.perf_counter()
        self.transport.write(self.load.request)

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        if self.need is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end])
            self.status = int(head[9:12])
            match = _CONTENT_LENGTH.search(head)
            self.need = end + 4 + (int(match.group(1)) if match else 0)
        if len(buffer) < self.need:
            return
        done = time.perf_counter()
        del buffer[: self.need]
        self.need = None
        load = self.load
        if load.measuring and done <= load.window_end:
            load.latencies.append(done - self.sent_at)
            if self.status not in load.expect:
                load.errors += 1
        if load.running:
            self._send()
        else:
            self.transport.close()

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc)


async def _python_load(port, target, concurrency, warmup, seconds):
    loop = asyncio.get_running_loop()
    load = _Load(target.raw_request(port), target.expect)

    async def connection():
        while load.running:
            lost = loop.create_future()
            try:
                await loop.create_connection(lambda lost=lost: _Connection(load, lost),
                                              "127.0.0.1", port)
            except OSError:
                load.errors += load.measuring
                await asyncio.sleep(0.05)
                continue
            await lost  # the server closed it (or we did at the end)

    tasks = [asyncio.ensure_future(connection()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    start = time.perf_counter()
    load.window_end = start + seconds
    load.measuring = True
    await asyncio.sleep(seconds)
    load.running = False
    elapsed = time.perf_counter() - start
    load.measuring = False
    await asyncio.wait(tasks, timeout=30)
    for task in tasks:
        task.cancel()
    return load.latencies, load.errors, min(elapsed, seconds)


def run_python(port, target, concurrency, warmup, seconds):
    latencies, errors, elapsed = asyncio.run(
        _python_load(port, target, concurrency, warmup, seconds)
    )
    latencies.sort()
    return Result(target.label, len(latencies), elapsed,
                  percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
                  errors, "python")


def _lua_string(value):
    return json.dumps(value)  # ASCII JSON strings are valid Lua strings


def wrk_script(target, path):
    lines = [f"wrk.method = {_lua_string(target.method)}"]
    if target.body:
        lines.append(f"wrk.body = {_lua_string(target.body)}")
    for name, value in target.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    # No response() callback (it would make wrk parse every body); wrk counts
    # any answer that is not 2xx or 3xx as a "status" error.
    lines += [
        "done = function(summary, latency, requests)",
        "  local e = summary.errors",
        '  io.write(string.format("BENCH_RESULT %d %d %d %d %d\\n", summary.requests,',
        "    summary.duration, latency:percentile(50), latency:percentile(99),",
        "    e.status + e.connect + e.read + e.write + e.timeout))",
        "end",
    ]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


def run_wrk(port, target, concurrency, warmup, seconds, workdir):
    script = os.path.join(workdir, "wrk.lua")
    wrk_script(target, script)
    url = f"http://127.0.0.1:{port}{target.path}"
    base = ["wrk", "-t1", f"-c{concurrency}", "--timeout", "60s", "-s", script]
    if warmup > 0:
        subprocess.run([*base, f"-d{max(1, round(warmup))}s", url],
                       capture_output=True, check=True)
    out = subprocess.run([*base, f"-d{max(1, round(seconds))}s", url],
                         capture_output=True, text=True, check=True).stdout
    match = re.search(r"BENCH_RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", out)
    if not match:
        raise SystemExit(f"could not read wrk's output:\n{out}")
    requests, duration_us, p50_us, p99_us, errors = map(int, match.groups())
    return Result(target.label, requests, duration_us / 1e6, p50_us / 1000, p99_us / 1000,
                  errors, "wrk")


def choose_client(requested):
    has_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not has_wrk:
        raise SystemExit(
            "wrk is not installed. Install it with `apt-get install -y wrk` "
            "(Debian/Ubuntu), or run with --client python (the built-in asyncio client)."
        )
    if requested == "auto":
        if has_wrk:
            return "wrk"
        print("note: wrk not found (`apt-get install -y wrk`); "
              "using the built-in asyncio client")
        return "python"
    return requested


# -- HTTP helpers for the set-up requests ------------------------------------------


def call(port, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                     method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    elapsed = time.perf_counter() - started
    try:
        decoded = json.loads(payload)
    except ValueError:
        decoded = payload[:500]
    return status, decoded, elapsed


def must(result, status, what):
    got, payload, _ = result
    if got != status or not (isinstance(payload, dict) and payload.get("status") is True):
        raise SystemExit(f"{what}: expected {status}, got {got}: {payload!r}"[:2000])
    return payload["data"]


# -- the run --------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def print_table(results, hello_rps):
    headers = ["endpoint", "req/s", "p50 ms", "p99 ms", "vs hello", "errors",
               "app CPU ms/req", "db CPU ms/req"]
    rows = []
    for r in results:
        per = {k: (v * 1000 if v is not None else None) for k, v in r.cpu.items()}
        rows.append([
            r.label, fmt(r.rps), fmt(r.p50, 2), fmt(r.p99, 2),
            f"{r.rps / hello_rps:.2f}" if hello_rps else "-", str(r.errors),
            fmt(per.get("server"), 2), fmt(per.get("db"), 2),
        ])
    print_markdown(headers, rows)


def print_markdown(headers, rows):
    """A Markdown table: the first column left-aligned, the figures right-aligned."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("| " + " | ".join(cells) + " |")


def add_load_arguments(parser, unit, database_url, redis_url):
    """The options every load benchmark shares; ``unit`` is what one measurement covers."""
    parser.add_argument("--seconds", type=float, default=10,
                        help=f"measured seconds per {unit} (default 10)")
    parser.add_argument("--warmup", type=float, default=2,
                        help=f"unmeasured seconds before each {unit} (default 2)")
    parser.add_argument("--concurrency", type=int, default=8,
                        help="keep-alive connections of the load generator (default 8)")
    parser.add_argument("--threads", type=int, default=8,
                        help="waitress threads of both servers (default 8)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if installed (auto), or the asyncio one")
    parser.add_argument("--database-url", default=database_url)
    parser.add_argument("--redis-url", default=redis_url)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Benchmark the accounts API against 1,000,000 users.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_arguments(parser, "endpoint", DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL)
    parser.add_argument("--users", type=int, default=1_000_000,
                        help="users to seed (default 1,000,000)")
    parser.add_argument("--reseed", action="store_true",
                        help="empty the users table and seed it again")
    parser.add_argument("--only", default="",
                        help="comma-separated subset of: hello,me,page1,last,cursor,login")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--serve-app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.serve_app:
        serve_app(args.serve_app, args.threads)
        return 0

    sys.path.insert(0, ROOT)
    scrub_environment()
    client = choose_client(args.client)
    wanted = {w.strip() for w in args.only.split(",") if w.strip()} or {
        "hello", "me", "page1", "last", "cursor", "login"}
    settings = app_settings(args)

    print(f"database: {args.database_url}   redis: {args.redis_url}")
    create_database(args.database_url)
    registry = build_registry(settings)
    total_users = seed(registry, args.users, args.reseed)
    reset_between_runs(registry)

    from sqlalchemy import text

    with registry.dbengine.connect() as conn:
        deep_id = conn.execute(
            text("SELECT id FROM users WHERE id <= :target ORDER BY id DESC LIMIT 1"),
            {"target": max(1, round(total_users * 0.9))},
        ).scalar()
    registry.dbengine.dispose()

    workdir = tempfile.mkdtemp(prefix="vexpenses-bench-")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEXPENSES_")}
    env["VEXPENSES_BENCH_SETTINGS"] = json.dumps(settings)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    app_port, hello_port = free_port(), free_port()
    servers = []
    try:
        app = Server("app", [sys.executable, os.path.abspath(__file__),
                             "--serve-app", str(app_port), "--threads", str(args.threads)],
                     app_port, workdir, env)
        servers.append(app)
        hello = Server("hello", [sys.executable, os.path.join(HERE, "hello_app.py"),
                                 "--port", str(hello_port), "--threads", str(args.threads)],
                       hello_port, workdir, env)
        servers.append(hello)
        app.wait_ready("/api/v1/user/me")
        hello.wait_ready("/hello")

        # One login, for the token every authenticated request sends.
        login_body = {"email": BENCH_EMAIL, "password": BENCH_PASSWORD}
        token = must(call(app_port, "POST", "/api/v1/user/authenticate", login_body),
                     201, "login")["token"]
        auth = {"Authorization": f"Bearer {token}"}
        must(call(app_port, "GET", "/api/v1/user/me", token=token), 200, "GET /me")

        # The first page with a cold count cache (COUNT(*) over every user).
        registry.redis.incr(USERS_VERSION_KEY)
        cold = call(app_port, "GET", "/api/v1/user?page=1", token=token)
        first = must(cold, 200, "GET /api/v1/user?page=1")
        total, last_page = first["total"], first["last_page"]
        last = must(call(app_port, "GET", f"/api/v1/user?page={last_page}", token=token),
                    200, "last page")
        if not last["data"]:
            raise SystemExit(f"the last page ({last_page}) came back empty")
        cursor = cursor_after(deep_id)
        walk = must(call(app_port, "GET", f"/api/v1/user?cursor={cursor}", token=token),
                    200, "cursor step")
        if not walk["data"] or walk["data"][0]["id"] <= deep_id:
            raise SystemExit(f"the cursor step after id {deep_id} returned {walk['data'][:1]}")

        print(f"users: {total:,} (last page {last_page:,}); cursor after id {deep_id:,}; "
              f"first page with a cold count cache: {cold[2] * 1000:.0f} ms")
        login_json = json.dumps(login_body)
        targets = [
            ("hello", hello, Target("bare hello view (baseline)", "GET", "/hello")),
            ("me", app, Target("GET /api/v1/user/me", "GET", "/api/v1/user/me", auth)),
            ("page1", app, Target("GET /api/v1/user?page=1", "GET", "/api/v1/user?page=1",
                                  auth)),
            ("last", app, Target(f"GET /api/v1/user?page={last_page} (last)", "GET",
                                 f"/api/v1/user?page={last_page}", auth)),
            ("cursor", app, Target(f"GET /api/v1/user?cursor=... (after {deep_id})", "GET",
                                   f"/api/v1/user?cursor={cursor}", auth)),
            ("login", app, Target("POST /api/v1/user/authenticate", "POST",
                                  "/api/v1/user/authenticate",
                                  {"Content-Type": "application/json"}, login_json,
                                  expect=(201,))),
        ]
        db_pid = find_database_pid()
        load1 = os.getloadavg()[0]
        print(f"client: {client}, {args.concurrency} connections, {args.seconds:g} s per "
              f"endpoint after {args.warmup:g} s warm-up; waitress threads={args.threads}; "
              f"{os.cpu_count()} CPUs; load average {load1:.2f}")
        if load1 > 0.5:
            print("warning: the machine is busy; figures will be noisy "
                  "(background load is shown per endpoint)")
        results = []
        for key, server, target in targets:
            if key not in wanted:
                continue
            print(f"  {target.label} ...", end=" ", flush=True)
            meter = CpuMeter(server, db_pid if server is app else None)
            with meter:
                if client == "wrk":
                    result = run_wrk(server.port, target, args.concurrency, args.warmup,
                                     args.seconds, workdir)
                else:
                    result = run_python(server.port, target, args.concurrency, args.warmup,
                                        args.seconds)
            wall = args.seconds + args.warmup
            result.key = key
            # CPU seconds per request, over warm-up and measurement alike.
            served = result.rps * wall
            result.cpu = {n: (meter.delta(n) / served if meter.delta(n) is not None and served
                              else None)
                          for n in ("server", "db", "client")}
            result.other_cores = meter.other_share(wall)
            print(f"{result.rps:,.1f} req/s; background load "
                  f"{fmt(result.other_cores, 2)} cores")
            results.append(result)
    finally:
        for server in servers:
            server.stop()

    by_key = {r.key: r for r in results}
    hello_rps = by_key["hello"].rps if "hello" in by_key else None
    print()
    print(f"vexpenses accounts benchmark, {datetime.date.today().isoformat()}, "
          f"{os.cpu_count()} CPUs, {total:,} users, client {client}, "
          f"c={args.concurrency}, waitress threads={args.threads}, {args.seconds:g} s each")
    print()
    print_table(results, hello_rps)
    print()

    verdicts = {}
    if "me" in by_key and hello_rps:
        ratio = by_key["me"].rps / hello_rps
        verdicts["me_throughput"] = ratio >= 0.5
        print(f"{'PASS' if ratio >= 0.5 else 'FAIL'}: GET /me throughput is "
              f"{ratio:.2f} x the bare view (target >= 0.50)")
    if "page1" in by_key and "last" in by_key:
        ratio = by_key["last"].p50 / by_key["page1"].p50
        verdicts["last_page_latency"] = ratio <= 3
        print(f"{'PASS' if ratio <= 3 else 'FAIL'}: last page p50 is {ratio:.1f} x the "
              f"first page p50 (target <= 3.0)")
    if any(r.errors for r in results):
        print("warning: some requests failed (see the errors column); "
              f"server logs are in {workdir}")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({
                "date": datetime.date.today().isoformat(),
                "cpus": os.cpu_count(),
                "users": total,
                "client": client,
                "concurrency": args.concurrency,
                "threads": args.threads,
                "seconds": args.seconds,
                "results": [
                    {"endpoint": r.label, "key": r.key, "requests": r.requests,
                     "rps": r.rps, "p50_ms": r.p50, "p99_ms": r.p99, "errors": r.errors,
                     "vs_hello": r.rps / hello_rps if hello_rps else None,
                     "cpu_seconds": r.cpu, "background_cores": r.other_cores}
                    for r in results
                ],
                "targets": verdicts,
            }, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
