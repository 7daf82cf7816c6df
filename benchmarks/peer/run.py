"""vexpenses against the peer (fastapi-users), side by side on this machine.

    .venv/bin/python benchmarks/peer/run.py [--rounds 2] [--seconds 8] [--concurrency 8,64]

1. Creates the peer's own venv in ``benchmarks/peer/.venv`` (git-ignored) and
   installs ``benchmarks/peer/requirements.txt`` into it; skipped while the
   requirements have not changed since the last install.
2. Starts from fresh databases: ``vexpenses_bench_vs_peer`` (ours, migrated)
   and ``vexpenses_peer_bench`` (the peer's tables, created by its start-up).
3. Serves ours the way the other load benchmarks do (``make_app`` under
   waitress, 8 threads, MariaDB + Redis, rate limits off) and the peer
   (``app.py``) under uvicorn with one worker, and creates one user in each:
   ours in SQL with our hasher, the peer through its ``/auth/register``.
   Both hash with argon2id t=3, m=64 MiB, p=4.
4. Drives both with the same load generator (wrk when installed, else the
   harness's asyncio client) at each concurrency, rounds interleaved (ours,
   peer, ours, peer, ...): ``GET /api/v1/user/me`` against ``GET /users/me``
   with a bearer token, and ``POST /api/v1/user/authenticate`` against
   ``POST /auth/jwt/login``.
5. Prints req/s (mean over rounds, and its range), p50 and p99 (median over
   rounds), errors and the ratio ours / peer.

A benchmark, not a test: nothing under tests/ runs it, and it asserts nothing.
"""

import argparse
import datetime
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PEER = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = os.path.dirname(PEER)
sys.path.insert(0, BENCHMARKS)

from harness import (  # noqa: E402  (benchmarks/ is put on sys.path just above)
    JWT_SECRET,
    ROOT,
    Server,
    Target,
    announce_load,
    build_registry,
    call,
    choose_client,
    create_database,
    drop_database,
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

VENV = os.path.join(PEER, ".venv")
VENV_PYTHON = os.path.join(VENV, "bin", "python")
REQUIREMENTS = os.path.join(PEER, "requirements.txt")
STAMP = os.path.join(VENV, "requirements.sha256")

DEFAULT_DATABASE_URL = "mysql+pymysql://root@127.0.0.1:3306/vexpenses_bench_vs_peer"
DEFAULT_PEER_DATABASE_URL = "mysql+aiomysql://root@127.0.0.1:3306/vexpenses_peer_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"
EMAIL = "bench@bench.example.com"  # .test is a special-use name: our login refuses it
PASSWORD = "benchmark-password-1"


# -- the peer's venv -------------------------------------------------------------


def ensure_venv():
    """Create the peer's venv and install its pinned requirements when they changed."""
    with open(REQUIREMENTS, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    if not os.path.exists(VENV_PYTHON):
        print(f"peer: creating {os.path.relpath(VENV, ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    try:
        with open(STAMP) as fh:
            installed = fh.read().strip()
    except OSError:
        installed = None
    if installed != digest:
        print("peer: installing requirements.txt ...", flush=True)
        subprocess.run([VENV_PYTHON, "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "-r", REQUIREMENTS], check=True)
        with open(STAMP, "w") as fh:
            fh.write(digest + "\n")
    version = subprocess.run(
        [VENV_PYTHON, "-c", "import fastapi_users; print(fastapi_users.__version__)"],
        capture_output=True, text=True, check=True).stdout.strip()
    return version


# -- set-up ------------------------------------------------------------------------


def our_settings(args):
    """As benchmarks/accounts.py: rate limits off for the looping client, the default
    argon2 cost, a token that lasts the run."""
    return {
        "vexpenses.env": "testing",
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.database_url": args.database_url,
        "vexpenses.redis_url": args.redis_url,
        "vexpenses.ratelimit.enabled": "false",
        "vexpenses.auto_migrate": "false",
        "vexpenses.plugins": "",
        "vexpenses.access_token_seconds": "3600",
    }


def create_our_user(registry):
    from pyramid.scripting import prepare
    from sqlalchemy import text

    from vexpenses_core.accounts.interfaces import IPasswordHasher

    env = prepare(registry=registry)
    hasher = env["request"].find_service(IPasswordHasher)
    env["closer"]()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    with registry.dbengine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, email, password_hash, birth_date, is_admin,"
                 " created_at, updated_at)"
                 " VALUES ('Benchmark User', :email, :hash, '1990-01-01', 0, :now, :now)"),
            {"email": EMAIL, "hash": hasher.hash(PASSWORD), "now": now},
        )
    registry.dbengine.dispose()
    registry.redis.flushdb()  # this benchmark's own Redis database


def peer_login(port):
    """fastapi-users' login is an OAuth2 password form; it answers 200 with the token."""
    body = urllib.parse.urlencode({"username": EMAIL, "password": PASSWORD}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/auth/jwt/login", data=body,
                                     method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["access_token"]
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"peer login: {exc.code} {exc.read()[:500]!r}") from None


def check(result, status, what):
    got, payload, _ = result
    if got != status:
        raise SystemExit(f"{what}: expected {status}, got {got}: {payload!r}"[:2000])
    return payload


# -- figures -----------------------------------------------------------------------


def summarise(results):
    rates = [r.rps for r in results]
    return {
        "rps": statistics.mean(rates),
        "low": min(rates),
        "high": max(rates),
        "p50": statistics.median(r.p50 for r in results),
        "p99": statistics.median(r.p99 for r in results),
        "errors": sum(r.errors for r in results),
        "requests": sum(r.requests for r in results),
        "cpu_ms": statistics.mean((r.cpu.get("server") or 0) * 1000 for r in results),
    }


def print_table(rows):
    headers = ["endpoint (ours vs peer)", "c", "ours req/s", "peer req/s", "ours/peer",
               "ours p50 ms", "peer p50 ms", "ours p99 ms", "peer p99 ms",
               "errors ours/peer", "server CPU ms/req ours/peer"]
    lines = []
    for label, concurrency, ours, peer in rows:
        ratio = ours["rps"] / peer["rps"] if peer["rps"] else float("nan")
        lines.append([
            label, str(concurrency),
            f"{fmt(ours['rps'])} ({fmt(ours['low'], 0)}-{fmt(ours['high'], 0)})",
            f"{fmt(peer['rps'])} ({fmt(peer['low'], 0)}-{fmt(peer['high'], 0)})",
            f"**{ratio:.2f}**",
            fmt(ours["p50"], 2), fmt(peer["p50"], 2), fmt(ours["p99"], 2), fmt(peer["p99"], 2),
            f"{ours['errors']}/{peer['errors']}",
            f"{fmt(ours['cpu_ms'], 2)}/{fmt(peer['cpu_ms'], 2)}",
        ])
    print_markdown(headers, lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="vexpenses against fastapi-users, side by side.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds per endpoint and concurrency (default 2)")
    parser.add_argument("--seconds", type=float, default=8,
                        help="measured seconds per round and server (default 8)")
    parser.add_argument("--warmup", type=float, default=2,
                        help="unmeasured seconds before each measurement (default 2)")
    parser.add_argument("--concurrency", default="8,64",
                        help="comma-separated connection counts (default 8,64)")
    parser.add_argument("--only", default="me,login", help="subset of: me,login")
    parser.add_argument("--threads", type=int, default=8,
                        help="waitress threads of our server (default 8)")
    parser.add_argument("--peer-workers", type=int, default=1,
                        help="uvicorn workers of the peer (default 1)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk if installed (auto), or the asyncio one")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    parser.add_argument("--peer-database-url", default=DEFAULT_PEER_DATABASE_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    scrub_environment()
    client = choose_client(args.client)
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    started = time.monotonic()

    peer_version = ensure_venv()

    # Fresh databases: one user each, nothing left from an earlier run.
    from sqlalchemy.engine import make_url

    peer_admin_url = make_url(args.peer_database_url).set(drivername="mysql+pymysql")
    for url in (args.database_url, peer_admin_url):
        drop_database(url)
        create_database(url)
    settings = our_settings(args)
    registry = build_registry(settings)
    create_our_user(registry)

    workdir = tempfile.mkdtemp(prefix="vexpenses-peer-bench-")
    servers = []
    results = {}
    try:
        ours = start_app("ours", settings, args.threads, workdir, subprocess_env())
        servers.append(ours)
        peer_port = free_port()
        peer_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("VEXPENSES_", "PYTHON"))}
        peer_env.update(PEER_DATABASE_URL=args.peer_database_url)
        peer = Server("peer", [VENV_PYTHON, "-m", "uvicorn", "app:app", "--app-dir", PEER,
                               "--host", "127.0.0.1", "--port", str(peer_port),
                               "--workers", str(args.peer_workers), "--no-access-log",
                               "--log-level", "warning"],
                      peer_port, workdir, peer_env)
        servers.append(peer)
        ours.wait_ready("/api/v1/user/me")
        peer.wait_ready("/users/me")

        our_token = must(call(ours.port, "POST", "/api/v1/user/authenticate",
                              {"email": EMAIL, "password": PASSWORD}), 201, "our login")["token"]
        must(call(ours.port, "GET", "/api/v1/user/me", token=our_token), 200, "our /me")
        check(call(peer.port, "POST", "/auth/register", {"email": EMAIL, "password": PASSWORD}),
              201, "peer register")
        peer_token = peer_login(peer.port)
        me = check(call(peer.port, "GET", "/users/me", token=peer_token), 200, "peer /users/me")
        if me.get("email") != EMAIL:
            raise SystemExit(f"peer /users/me answered {me!r}")

        form = urllib.parse.urlencode({"username": EMAIL, "password": PASSWORD})
        pairs = {
            "me": ("GET /me vs GET /users/me",
                   Target("our /me", "GET", "/api/v1/user/me",
                          {"Authorization": f"Bearer {our_token}"}),
                   Target("peer /users/me", "GET", "/users/me",
                          {"Authorization": f"Bearer {peer_token}"})),
            "login": ("login vs login (argon2id)",
                      Target("our login", "POST", "/api/v1/user/authenticate",
                             {"Content-Type": "application/json"},
                             json.dumps({"email": EMAIL, "password": PASSWORD}),
                             expect=(201,)),
                      Target("peer login", "POST", "/auth/jwt/login",
                             {"Content-Type": "application/x-www-form-urlencoded"}, form)),
        }
        db_pid = find_database_pid()
        announce_load(client, args, "round and server",
                      f", {args.rounds} interleaved rounds")
        for key in wanted:
            label, our_target, peer_target = pairs[key]
            for concurrency in concurrencies:
                load = argparse.Namespace(**{**vars(args), "concurrency": concurrency})
                for round_no in range(1, args.rounds + 1):
                    for side, server, target in (("ours", ours, our_target),
                                                 ("peer", peer, peer_target)):
                        print(f"  {target.label}, c={concurrency}, round {round_no} ...",
                              end=" ", flush=True)
                        result = measure(client, server, target, load, workdir, db_pid)
                        print(f"{result.rps:,.1f} req/s, {result.errors} errors; background "
                              f"load {fmt(result.other_cores, 2)} cores")
                        results.setdefault((key, concurrency, side), []).append(result)
    finally:
        for server in servers:
            server.stop()

    rows = []
    for key in wanted:
        for concurrency in concurrencies:
            rows.append((pairs[key][0], concurrency,
                         summarise(results[(key, concurrency, "ours")]),
                         summarise(results[(key, concurrency, "peer")])))
    print()
    print(f"vexpenses vs fastapi-users {peer_version}, {datetime.date.today().isoformat()}, "
          f"{os.cpu_count()} CPUs, client {client}, {args.rounds} interleaved rounds of "
          f"{args.seconds:g} s (after {args.warmup:g} s warm-up); ours: waitress "
          f"threads={args.threads}; peer: uvicorn workers={args.peer_workers}; "
          f"total {time.monotonic() - started:.0f} s")
    print()
    print_table(rows)
    print()
    print("req/s: mean over rounds (lowest-highest round); p50, p99: median over rounds; "
          "server CPU: the server process only, warm-up included.")
    if any(r["errors"] for _, _, o, p in rows for r in (o, p)):
        print(f"warning: some requests failed; server logs are in {workdir}")

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({
                "date": datetime.date.today().isoformat(),
                "cpus": os.cpu_count(), "client": client, "peer": peer_version,
                "rounds": args.rounds, "seconds": args.seconds,
                "rows": [{"pair": label, "concurrency": c, "ours": o, "peer": p}
                         for label, c, o, p in rows],
            }, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
