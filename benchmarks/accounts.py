"""Accounts benchmark: the real app under waitress, against 1,000,000 users.

    .venv/bin/python benchmarks/accounts.py [--seconds 10] [--rounds 3] [--reseed]

1. Creates the MariaDB database ``vexpenses_bench`` when missing, migrates
   it, and seeds 1,000,000 users with MariaDB's SEQUENCE engine (skipped when
   the table already holds them, unless ``--reseed``).  One user, id 1, has a
   real argon2 password; the others have none.
2. Serves the real app (``make_app``) and a bare Pyramid "hello" view, each
   in its own waitress subprocess (threads=8) on 127.0.0.1.
3. Loads each endpoint over loopback with a fixed number of keep-alive
   connections (8) for ``--seconds`` after a short warm-up, and reports
   req/s, p50 and p99 latency, and req/s as a fraction of the hello view's.
   With ``--rounds N`` every endpoint is measured N times, in turn, so that
   a busy spell on a shared machine falls on the hello view and /me alike.
4. Prints PASS/FAIL for the two targets (never asserts):
   ``GET /me`` req/s >= 0.5 x hello, and last page p50 <= 3 x first page p50.

The load generator is wrk when it is installed (``apt-get install -y wrk``)
and a small asyncio client otherwise; ``--client`` chooses.  Both use one
thread, so that on a 2-core machine the client leaves the server a core.
They, the servers and the CPU accounting are the benchmarks' shared harness
(``benchmarks/harness.py``).
"""

import argparse
import base64
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

from harness import (
    HERE,
    JWT_SECRET,
    ROOT,
    Result,
    Server,
    Target,
    add_load_arguments,
    announce_load,
    build_registry,
    call,
    choose_client,
    create_database,
    find_database_pid,
    fmt,
    free_port,
    measure,
    must,
    print_markdown,
    scrub_environment,
    start_app,
    subprocess_env,
)

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/vexpenses_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
BENCH_EMAIL = "bench@bench.example.com"  # .test is a special-use name: login refuses it
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
        from vexpenses_core.accounts.users import encode_cursor
    except ImportError:  # the services moved; this is the documented format
        def encode_cursor(value):
            raw = json.dumps({"after": value}).encode()
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return encode_cursor(last_id)


# -- the run --------------------------------------------------------------------


def combine(results):
    """One row for several rounds of one endpoint: mean req/s, medians of the rest."""
    if len(results) == 1:
        return results[0]
    first = results[0]
    seconds = sum(r.seconds for r in results)
    row = Result(first.label, sum(r.requests for r in results), seconds,
                 statistics.median(r.p50 for r in results),
                 statistics.median(r.p99 for r in results),
                 sum(r.errors for r in results), first.client)
    row.key = first.key
    row.cpu = {name: statistics.median(r.cpu[name] for r in results)
               if all(r.cpu.get(name) is not None for r in results) else None
               for name in first.cpu}
    others = [r.other_cores for r in results if r.other_cores is not None]
    row.other_cores = statistics.mean(others) if others else None
    return row


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
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every endpoint this many times, in turn (default 1)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
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
    env = subprocess_env()
    hello_port = free_port()
    servers = []
    try:
        app = start_app("app", settings, args.threads, workdir, env)
        app_port = app.port
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
        announce_load(client, args, "endpoint", f", {args.rounds} interleaved rounds")
        # Every endpoint once per round, in turn: a busy spell on the shared
        # machine then hits the hello view and /me alike, and each round's
        # ratio compares two measurements a few seconds apart.
        rounds = []
        for round_number in range(1, args.rounds + 1):
            if args.rounds > 1:
                print(f" round {round_number} of {args.rounds}")
            done = {}
            for key, server, target in targets:
                if key not in wanted:
                    continue
                print(f"  {target.label} ...", end=" ", flush=True)
                result = measure(client, server, target, args, workdir,
                                 db_pid if server is app else None)
                result.key = key
                print(f"{result.rps:,.1f} req/s; background load "
                      f"{fmt(result.other_cores, 2)} cores")
                done[key] = result
            rounds.append(done)
        results = [combine([r[key] for r in rounds]) for key in rounds[0]]
    finally:
        for server in servers:
            server.stop()

    by_key = {r.key: r for r in results}
    hello_rps = by_key["hello"].rps if "hello" in by_key else None
    print()
    print(f"vexpenses accounts benchmark, {datetime.date.today().isoformat()}, "
          f"{os.cpu_count()} CPUs, {total:,} users, client {client}, "
          f"c={args.concurrency}, waitress threads={args.threads}, {args.seconds:g} s each, "
          f"{args.rounds} interleaved round(s)")
    if args.rounds > 1:
        print("req/s: mean over rounds; p50, p99, CPU: median over rounds")
    print()
    print_table(results, hello_rps)
    print()

    verdicts = {}
    if "me" in by_key and hello_rps:
        ratio = by_key["me"].rps / hello_rps
        verdicts["me_throughput"] = ratio >= 0.5
        per_round = ", ".join(f"{r['me'].rps / r['hello'].rps:.2f}" for r in rounds)
        print(f"{'PASS' if ratio >= 0.5 else 'FAIL'}: GET /me throughput is "
              f"{ratio:.2f} x the bare view (target >= 0.50); by round: {per_round}")
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
