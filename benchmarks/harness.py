"""What the load benchmarks share: servers, load generators, CPU accounting, tables.

    from harness import Server, Target, measure, ...   (benchmarks/ is on sys.path)

- **settings and databases**: :func:`scrub_environment`, :func:`create_database`,
  :func:`drop_database`, :func:`build_registry`;
- **servers**: :class:`Server` (a waitress subprocess), :func:`start_app` serves
  ``make_app(settings)`` in one (``python benchmarks/harness.py --serve-app PORT``);
- **load generators**: wrk when installed (``apt-get install -y wrk``), else a
  small asyncio client; both use one thread, so that on a 2-core machine the
  client leaves the server a core. :func:`measure` runs one and charges CPU
  time per request to the server, the database and the client;
- **output**: :func:`fmt`, :func:`print_markdown`, :func:`announce_load`.
"""

import argparse
import asyncio
import json
import math
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

JWT_SECRET = "vexpenses-benchmark-secret-0123456789abcdef0123456789"


# -- settings and databases -----------------------------------------------------


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



def drop_database(database_url):
    """A fresh start: the benchmark's own database only (its name must say bench)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if "bench" not in (url.database or ""):
        raise SystemExit(f"refusing to drop {url.database!r}: use a database named *bench*")
    engine = create_engine(url.set(database=""))
    with engine.begin() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS `{url.database}`"))
    engine.dispose()


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


def subprocess_env(**extra):
    """The environment of a benchmark's subprocess: no VEXPENSES_* of the shell, the
    repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEXPENSES_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def start_app(name, settings, threads, workdir, env):
    """Serve ``make_app(settings)`` under waitress in a subprocess on a free port."""
    port = free_port()
    env = dict(env, VEXPENSES_BENCH_SETTINGS=json.dumps(settings))
    return Server(name, [sys.executable, os.path.abspath(__file__), "--serve-app", str(port),
                         "--threads", str(threads)],
                  port, workdir, env)


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


def measure(client, server, target, args, workdir, db_pid, names=("server", "db", "client")):
    """Load ``target`` on ``server`` for ``args.seconds`` after ``args.warmup``; the
    result carries CPU seconds per request (warm-up included) of each of ``names``."""
    meter = CpuMeter(server, db_pid)
    with meter:
        if client == "wrk":
            result = run_wrk(server.port, target, args.concurrency, args.warmup,
                             args.seconds, workdir)
        else:
            result = run_python(server.port, target, args.concurrency, args.warmup,
                                args.seconds)
    wall = args.seconds + args.warmup
    served = result.rps * wall
    result.cpu = {n: (meter.delta(n) / served if meter.delta(n) is not None and served
                      else None) for n in names}
    result.other_cores = meter.other_share(wall)
    return result


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


# -- output ----------------------------------------------------------------------


def fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"



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




def announce_load(client, args, unit, detail=""):
    """Say how the load is made, and warn when the machine is busy already."""
    load1 = os.getloadavg()[0]
    print(f"client: {client}, {args.concurrency} connections, {args.seconds:g} s per {unit} "
          f"after {args.warmup:g} s warm-up{detail}; waitress threads={args.threads}; "
          f"{os.cpu_count()} CPUs; load average {load1:.2f}")
    if load1 > 0.5:
        print("warning: the machine is busy; figures will be noisy "
              f"(background load is shown per {unit})")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve make_app(VEXPENSES_BENCH_SETTINGS).")
    parser.add_argument("--serve-app", type=int, metavar="PORT", required=True)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    serve_app(args.serve_app, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
