"""Audit log benchmark: GET /api/v1/user/me with the audit_log plugin enabled and disabled.

    .venv/bin/python benchmarks/audit_log.py [--rounds 3] [--seconds 10]

1. Creates the MariaDB database ``vexpenses_bench_audit`` when missing,
   migrates the core and the audit_log branch, and seeds a few users (the
   benchmark user, id 1, can log in). The audit tables are emptied.
2. Serves the same app twice, each in its own waitress subprocess
   (threads=8) on 127.0.0.1, on the same MariaDB and Redis: once with
   ``vexpenses.plugins = audit_log`` and once with no plugin. With Redis
   configured the plugin uses its default for that case, the Redis transport,
   where the web process only pushes records to Redis and ``vexpenses worker``
   writes them: one worker process runs alongside, on the same two cores, so
   its CPU counts against the "on" runs.
3. Loads ``GET /api/v1/user/me`` (one access token, from one login) on each
   server in turn, off and on, ``--rounds`` times, so that both see the same
   background noise; reports req/s, p50 and p99 latency, and CPU per request.
4. Checks that the plugin really recorded: every request served by the "on"
   server left one row (counted after its records are drained), and the hash
   chain verifies.
5. Prints the ratio on/off and PASS/FAIL for the target (never asserts): the
   plugin costs at most 15% of throughput.

The servers, the load generators (wrk when installed, else an asyncio
client) and the CPU accounting are the benchmarks' shared harness
(``benchmarks/harness.py``); the users are seeded as the accounts benchmark
(``benchmarks/accounts.py``) seeds them.
"""

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import accounts  # noqa: E402  (the accounts benchmark, next to this file)
import harness  # noqa: E402

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/vexpenses_bench_audit"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
TARGET_COST = 0.15
REDIS_PREFIX = "vexpenses-bench-audit:"


def app_settings(args, plugins):
    return {
        "vexpenses.env": "testing",
        "vexpenses.jwt_secret": harness.JWT_SECRET,
        "vexpenses.database_url": args.database_url,
        "vexpenses.redis_url": args.redis_url,
        "vexpenses.redis_prefix": REDIS_PREFIX,
        "vexpenses.tasks.queue": REDIS_PREFIX + "tasks",
        "vexpenses.ratelimit.enabled": "false",
        "vexpenses.auto_migrate": "false",
        "vexpenses.plugins": plugins,
        "vexpenses.access_token_seconds": "3600",
        "vexpenses.audit_log.transport": args.transport,
    }


def prepare(args):
    """Database, migrations, users; empty audit tables and Redis keys. Returns the registry."""
    from sqlalchemy import text

    harness.create_database(args.database_url)
    registry = harness.build_registry(app_settings(args, "audit_log"))
    accounts.seed(registry, args.users, reseed=False)
    accounts.reset_between_runs(registry)
    with registry.dbengine.begin() as conn:
        conn.execute(text("TRUNCATE TABLE audit_log_entries"))
        conn.execute(text("TRUNCATE TABLE audit_log_details"))
        conn.execute(text("TRUNCATE TABLE audit_log_erased"))
        conn.execute(text("DELETE FROM audit_log_chain"))
    for key in registry.redis.scan_iter(match=REDIS_PREFIX + "*"):
        registry.redis.delete(key)
    return registry


def audit_rows(registry):
    from sqlalchemy import text

    with registry.dbengine.connect() as conn:
        return conn.execute(text("SELECT COUNT(*) FROM audit_log_entries")).scalar()


def wait_drained(registry, timeout=60):
    """Until the "on" server has written all it buffered: Redis list empty, count stable."""
    queue = REDIS_PREFIX + "audit_log:queue"
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        count = audit_rows(registry)
        if count == last and not registry.redis.llen(queue):
            return count
        last = count
        time.sleep(1.5)  # longer than the flush interval
    return audit_rows(registry)


def start_worker(args, workdir, base_env):
    """`vexpenses worker --workers 1` with the "on" settings: it writes what the web pushes."""
    import pathlib
    import subprocess

    from vexpenses_core.settings import environ_for
    from vexpenses_core.testing import write_ini

    env = {**base_env, **environ_for(app_settings(args, "audit_log"))}
    command = [os.path.join(os.path.dirname(sys.executable), "vexpenses"), "worker",
               str(write_ini(pathlib.Path(workdir))), "--workers", "1"]
    log = open(os.path.join(workdir, "worker.log"), "wb")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def print_table(results):
    headers = ["run", "req/s", "p50 ms", "p99 ms", "errors", "app CPU ms/req",
               "db CPU ms/req", "background cores"]
    rows = [[r.label, harness.fmt(r.rps), harness.fmt(r.p50, 2), harness.fmt(r.p99, 2),
             str(r.errors), harness.fmt((r.cpu.get("server") or 0) * 1000, 2),
             harness.fmt((r.cpu.get("db") or 0) * 1000, 2), harness.fmt(r.other_cores, 2)]
            for r in results]
    harness.print_markdown(headers, rows)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="GET /api/v1/user/me throughput with the audit_log plugin on and off.")
    parser.add_argument("--rounds", type=int, default=3,
                        help="off/on measurement pairs (default 3)")
    harness.add_load_arguments(parser, "run", DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL)
    parser.add_argument("--users", type=int, default=1000, help="users to seed (default 1000)")
    parser.add_argument("--transport", choices=("auto", "memory", "redis"), default="auto",
                        help="the plugin's vexpenses.audit_log.transport (auto: redis here)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    harness.scrub_environment()
    client = harness.choose_client(args.client)
    print(f"database: {args.database_url}   redis: {args.redis_url}")
    registry = prepare(args)

    workdir = tempfile.mkdtemp(prefix="vexpenses-bench-audit-")
    base_env = harness.subprocess_env()
    servers = {}
    results = []
    worker = None
    try:
        for name, plugins in (("off", ""), ("on", "audit_log")):
            servers[name] = harness.start_app(f"app-{name}", app_settings(args, plugins),
                                              args.threads, workdir, base_env)
        for server in servers.values():
            server.wait_ready("/api/v1/user/me")
        worker = start_worker(args, workdir, base_env)

        login = {"email": accounts.BENCH_EMAIL, "password": accounts.BENCH_PASSWORD}
        token = harness.must(harness.call(servers["off"].port, "POST",
                                            "/api/v1/user/authenticate", login),
                              201, "login")["token"]
        for server in servers.values():
            harness.must(harness.call(server.port, "GET", "/api/v1/user/me", token=token),
                          200, f"GET /me on {server.name}")
        wait_drained(registry)
        rows_before = audit_rows(registry)

        target = harness.Target("GET /api/v1/user/me", "GET", "/api/v1/user/me",
                                 {"Authorization": f"Bearer {token}"})
        db_pid = harness.find_database_pid()
        harness.announce_load(client, args, "run", f", {args.rounds} rounds")
        on_requests = 0
        for round_number in range(1, args.rounds + 1):
            for name in ("off", "on"):
                print(f"  round {round_number}, audit_log {name} ...", end=" ", flush=True)
                result = harness.measure(client, servers[name], target, args, workdir,
                                         db_pid, names=("server", "db"))
                result.label = f"audit_log {name}, round {round_number}"
                result.key = name
                print(f"{result.rps:,.1f} req/s")
                results.append(result)
                if name == "on":
                    on_requests += result.requests
                    wait_drained(registry)  # its writes must not burden the next "off" run
        rows_written = wait_drained(registry) - rows_before
    finally:
        for server in servers.values():
            server.stop()
        if worker is not None:
            worker.terminate()
            worker.wait(60)

    from vexpenses_audit_log import chain

    started = time.perf_counter()
    verification = chain.verify(registry.dbengine)
    verify_seconds = time.perf_counter() - started

    off = [r.rps for r in results if r.key == "off"]
    on = [r.rps for r in results if r.key == "on"]
    ratio = statistics.mean(on) / statistics.mean(off)
    pair_ratios = [b / a for a, b in zip(off, on, strict=True)]
    print()
    print(f"vexpenses audit_log benchmark, {datetime.date.today().isoformat()}, "
          f"{os.cpu_count()} CPUs, client {client}, c={args.concurrency}, waitress "
          f"threads={args.threads}, {args.seconds:g} s per run, transport "
          f"{args.transport}")
    print()
    print_table(results)
    print()
    print(f"mean req/s: off {statistics.mean(off):,.1f}, on {statistics.mean(on):,.1f}; "
          f"ratio on/off {ratio:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in pair_ratios)})")
    print(f"audit rows written while the plugin was on: {rows_written:,} "
          f"(measured requests: {on_requests:,}; the rest are warm-up requests)")
    print(f"chain verify: {'OK' if verification.ok else 'BROKEN: ' + verification.problem}, "
          f"{verification.rows:,} rows in {verify_seconds:.1f} s")
    cost = 1 - ratio
    verdict = cost <= TARGET_COST
    print(f"{'PASS' if verdict else 'FAIL'}: the audit log costs {cost * 100:.1f}% of "
          f"GET /me throughput (target <= {TARGET_COST * 100:.0f}%)")
    if rows_written < on_requests:
        print("warning: fewer rows than requests; see the server logs in " + workdir)

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({
                "date": datetime.date.today().isoformat(), "cpus": os.cpu_count(),
                "client": client, "concurrency": args.concurrency, "threads": args.threads,
                "seconds": args.seconds, "rounds": args.rounds, "transport": args.transport,
                "results": [{"run": r.label, "plugin": r.key, "requests": r.requests,
                             "rps": r.rps, "p50_ms": r.p50, "p99_ms": r.p99,
                             "errors": r.errors, "cpu_seconds": r.cpu,
                             "background_cores": r.other_cores} for r in results],
                "ratio": ratio, "cost": cost, "target_met": verdict,
                "rows_written": rows_written, "verified": verification.ok,
            }, fh, indent=2)
    registry.dbengine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
