"""Soak: the shipped production set-up under mixed load, with an import running.

It starts what production.ini describes, on this machine:

- ``pserve production.ini`` (port 6543, 8 threads) and
  ``vexpenses worker production.ini --workers 2``, configured through
  ``VEXPENSES_*`` variables: a fresh MariaDB database ``vexpenses_soak``,
  Redis db 13 (emptied first), uploads in a temporary folder, and an
  aiosmtpd sink run by this script for the mailer;
- ``vexpenses migrate production.ini``, then a few users through the API.

Then, for ``--seconds`` (60):

- ``--connections`` (50) clients loop over authenticated reads: ``/me``, a
  page of the user list, the import's status, a page of the audit log;
- one client loops login, GET refresh, POST refresh, ``/me``, logout;
- a CSV of ``--rows`` (200,000) users is uploaded by an admin at the start
  (per-user import quotas spare admins) and imported
  by the workers. It holds bad rows and duplicates, so the final counts are
  exact numbers known in advance.

The rate limits are raised for the run (``VEXPENSES_RATELIMIT_LOGIN_*``):
the looping client logs in far more often than a person, and a 429 there
would be the limiter working, not the service failing. Everything else is
production.ini's.

It prints p50 and p99 per kind and overall, req/s, and the import's counts,
and exits 1 on any socket error, any unexpected status, or a count that is
not the expected one.

    .venv/bin/python benchmarks/soak.py [--seconds 60] [--connections 50] [--rows 200000]
"""

import argparse
import asyncio
import collections
import datetime
import os
import pathlib
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import aiohttp
import pymysql
import redis

ROOT = pathlib.Path(__file__).resolve().parent.parent
BIN = pathlib.Path(sys.executable).parent
INI = str(ROOT / "production.ini")
BASE = "http://127.0.0.1:6543"
API = BASE + "/api/v1"
DATABASE = "vexpenses_soak"
REDIS_URL = "redis://127.0.0.1:6379/13"
SMTP_PORT = 8027
PASSWORD = "soak-password-123"
READERS = 5
ADMIN = "admin@soak.example.com"
# Bad rows and duplicates, at fixed places in the file.
BAD_EVERY, BAD_AT = 1000, 500         # a birth date that does not exist
REPEAT_EVERY, REPEAT_AT = 1000, 999   # the e-mail of the row before
EXISTING_AT = (10, 20, 30)            # e-mails of users registered before the import


def environment(tmp):
    return {
        **os.environ,
        "VEXPENSES_JWT_SECRET": "soak-secret-that-is-long-enough-for-hs256-0123456789",
        "VEXPENSES_DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{DATABASE}"
                                  "?charset=utf8mb4",
        "VEXPENSES_REDIS_URL": REDIS_URL,
        "VEXPENSES_REDIS_PREFIX": "soak:",
        "VEXPENSES_TASK_QUEUE": "soak:tasks",
        "VEXPENSES_UPLOAD_DIR": str(tmp / "uploads"),
        "VEXPENSES_BASE_URL": BASE,
        "VEXPENSES_SMTP_URL": f"smtp://127.0.0.1:{SMTP_PORT}",
        "VEXPENSES_MAIL_FROM": "soak@example.com",
        "VEXPENSES_RATELIMIT_LOGIN_IP": "100000 per minute",
        "VEXPENSES_RATELIMIT_LOGIN_ACCOUNT": "100000 per minute",
    }


def reader_email(i):
    return f"reader{i}@soak.example.com"


def write_csv(path, rows):
    """The CSV and the counts its import must end with."""
    rng = random.Random(rows)
    start = datetime.date(1950, 1, 1).toordinal()
    rejected = duplicates = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("Nome,E-mail,Data de nascimento\n")
        previous = None
        for i in range(rows):
            email = f"person.{i}@soak.example.org"
            birth = datetime.date.fromordinal(start + rng.randrange(20000)).isoformat()
            if i % BAD_EVERY == BAD_AT:
                birth, rejected = "2001-02-30", rejected + 1
            elif i % REPEAT_EVERY == REPEAT_AT:
                email, duplicates = previous, duplicates + 1
            elif i in EXISTING_AT:
                email, duplicates = reader_email(EXISTING_AT.index(i)), duplicates + 1
            out.write(f"Pessoa Número {i},{email},{birth}\n")
            previous = email
    return {"total": rows, "processed": rows, "rejected": rejected,
            "duplicates": duplicates, "imported": rows - rejected - duplicates}


def run(command, env, log):
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop(proc, sig=signal.SIGINT):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Stats:
    def __init__(self):
        self.times = collections.defaultdict(list)
        self.unexpected = collections.Counter()
        self.socket_errors = collections.Counter()

    def percentiles(self, values):
        values = sorted(values)
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        return statistics.median(values) * 1000, p99 * 1000


async def call(session, stats, kind, method, url, expect, **kwargs):
    started = time.perf_counter()
    try:
        async with session.request(method, url, **kwargs) as res:
            body = await res.json(content_type=None)
            status = res.status
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        stats.socket_errors[f"{kind}: {type(exc).__name__}"] += 1
        return None
    stats.times[kind].append(time.perf_counter() - started)
    if status != expect:
        stats.unexpected[f"{kind}: {status}"] += 1
        return None
    return body


async def reader(session, stats, token, import_id, uploader, deadline):
    """Mixed reads; the import's status as its uploader (only they may see it)."""
    headers = {"Authorization": f"Bearer {token}"}
    rng = random.Random()
    while time.monotonic() < deadline:
        choice = rng.randrange(4)
        if choice == 0:
            await call(session, stats, "me", "GET", f"{API}/user/me", 200, headers=headers)
        elif choice == 1:
            await call(session, stats, "user list", "GET",
                       f"{API}/user?page={rng.randint(1, 50)}", 200, headers=headers)
        elif choice == 2:
            await call(session, stats, "import status", "GET",
                       f"{API}/user/import-status/{import_id}", 200,
                       headers={"Authorization": f"Bearer {uploader}"})
        else:
            await call(session, stats, "log list", "GET", f"{API}/log?page=1", 200,
                       headers=headers)


async def login_loop(session, stats, deadline):
    """Login, GET refresh, POST refresh, /me with the newest token, logout."""
    email = "looper@soak.example.com"
    while time.monotonic() < deadline:
        body = await call(session, stats, "login", "POST", f"{API}/user/authenticate", 201,
                          json={"email": email, "password": PASSWORD})
        if body is None:
            await asyncio.sleep(0.1)
            continue
        token, refresh = body["data"]["token"], body["data"]["refresh_token"]
        body = await call(session, stats, "GET refresh", "GET", f"{API}/user/refresh-token",
                          201, headers={"Authorization": f"Bearer {token}"})
        token = body["data"]["token"] if body else token
        body = await call(session, stats, "POST refresh", "POST", f"{API}/user/refresh-token",
                          201, json={"refresh_token": refresh})
        token = body["data"]["token"] if body else token
        await call(session, stats, "me", "GET", f"{API}/user/me", 200,
                   headers={"Authorization": f"Bearer {token}"})
        await call(session, stats, "logout", "GET", f"{API}/user/logout", 201,
                   headers={"Authorization": f"Bearer {token}"})


async def upload(session, stats, token, path):
    form = aiohttp.FormData()
    form.add_field("file", open(path, "rb"), filename="soak.csv",  # noqa: SIM115
                   content_type="text/csv")
    form.add_field("send_invitations", "0")
    body = await call(session, stats, "upload", "POST", f"{API}/user/upload", 201,
                      data=form, headers={"Authorization": f"Bearer {token}"})
    if body is None:
        raise SystemExit(f"the upload failed: {dict(stats.unexpected)}")
    return body["data"]["id"]


async def wait_for_import(session, token, import_id, timeout=900):
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        async with session.get(f"{API}/user/import-status/{import_id}", headers=headers) as res:
            data = (await res.json())["data"]
        if data["status"] in (1, 2):
            return data
        await asyncio.sleep(0.5)
    raise SystemExit("the import did not finish")


async def soak(args, csv_path, expected):
    stats = Stats()
    connector = aiohttp.TCPConnector(limit=args.connections + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        for i in range(READERS):
            await call(session, stats, "register", "POST", f"{API}/user/register", 201,
                       json={"name": f"Reader {i}", "email": reader_email(i),
                             "password": PASSWORD, "password_confirmation": PASSWORD,
                             "birth_date": "1990-01-01"})
        await call(session, stats, "register", "POST", f"{API}/user/register", 201,
                   json={"name": "Looper", "email": "looper@soak.example.com",
                         "password": PASSWORD, "password_confirmation": PASSWORD,
                         "birth_date": "1990-01-01"})
        tokens = []
        for i in range(READERS):
            body = await call(session, stats, "login", "POST", f"{API}/user/authenticate", 201,
                              json={"email": reader_email(i), "password": PASSWORD})
            tokens.append(body["data"]["token"])
        body = await call(session, stats, "login", "POST", f"{API}/user/authenticate", 201,
                          json={"email": ADMIN, "password": PASSWORD})
        admin = body["data"]["token"] if body else None
        setup = dict(stats.unexpected), dict(stats.socket_errors)
        if any(setup):
            raise SystemExit(f"set-up failed: {setup}")
        stats = Stats()  # count the soak only

        started = time.monotonic()
        import_id = await upload(session, stats, admin, csv_path)
        deadline = started + args.seconds
        tasks = [reader(session, stats, tokens[i % READERS], import_id, admin, deadline)
                 for i in range(args.connections)]
        tasks.append(login_loop(session, stats, deadline))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
        final = await wait_for_import(session, admin, import_id)
        import_seconds = (datetime.datetime.fromisoformat(final["finished_at"].rstrip("Z"))
                          - datetime.datetime.fromisoformat(final["started_at"].rstrip("Z")))
    return stats, elapsed, final, import_seconds.total_seconds()


def report(args, stats, elapsed, final, import_seconds, expected):
    everything = [t for times in stats.times.values() for t in times]
    print(f"\n{args.connections} reader connections + 1 login loop for {elapsed:.1f} s; "
          f"{len(everything):,} requests, {len(everything) / elapsed:,.1f} req/s\n")
    print(f"| {'kind':<14} | {'requests':>9} | {'p50 ms':>8} | {'p99 ms':>8} |")
    print(f"|{'-' * 16}|{'-' * 10}:|{'-' * 9}:|{'-' * 9}:|")
    for kind in sorted(stats.times):
        p50, p99 = stats.percentiles(stats.times[kind])
        print(f"| {kind:<14} | {len(stats.times[kind]):>9,} | {p50:>8.1f} | {p99:>8.1f} |")
    p50, p99 = stats.percentiles(everything)
    print(f"| {'overall':<14} | {len(everything):>9,} | {p50:>8.1f} | {p99:>8.1f} |")
    print(f"\nsocket errors: {sum(stats.socket_errors.values())} {dict(stats.socket_errors)}")
    print(f"unexpected statuses: {sum(stats.unexpected.values())} {dict(stats.unexpected)}")
    counts = {name: final[name] for name in expected}
    print(f"import: status {final['status']}, {import_seconds:.1f} s from start to finish, "
          f"counts {counts}")
    print(f"expected counts {expected}")
    failed = bool(stats.socket_errors or stats.unexpected) or counts != expected
    print("FAIL" if failed else "PASS")
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rows", type=int, default=200_000)
    args = parser.parse_args()

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    smtp = Controller(Sink(), hostname="127.0.0.1", port=SMTP_PORT)
    smtp.start()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="vexpenses-soak-"))
    (tmp / "uploads").mkdir()
    conn = pymysql.connect(host="127.0.0.1", user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        cur.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4 "
                    "COLLATE utf8mb4_unicode_ci")
    redis.Redis.from_url(REDIS_URL).flushdb()
    env = environment(tmp)
    csv_path = tmp / "soak.csv"
    expected = write_csv(csv_path, args.rows)
    print(f"work folder {tmp}; CSV of {args.rows:,} rows")
    subprocess.run([str(BIN / "vexpenses"), "migrate", INI], env=env, check=True)
    # The uploader is an admin: per-user import quotas don't apply to admins.
    subprocess.run([str(BIN / "vexpenses"), "create-admin", INI, "--email", ADMIN],
                   env={**env, "VEXPENSES_ADMIN_PASSWORD": PASSWORD}, check=True)

    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed at the end
    web = run([str(BIN / "pserve"), INI], env, log)
    workers = run([str(BIN / "vexpenses"), "worker", INI, "--workers", "2"], env, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                import urllib.request

                urllib.request.urlopen(f"{API}/openapi.json", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise SystemExit(f"pserve did not start; see {log.name}") from None
                time.sleep(0.5)
        time.sleep(5)  # the workers finish starting
        stats, elapsed, final, import_seconds = asyncio.run(soak(args, csv_path, expected))
        status = report(args, stats, elapsed, final, import_seconds, expected)
    finally:
        stop(web)
        stop(workers, signal.SIGTERM)
        log.close()
        smtp.stop()
    print(f"server and worker log: {log.name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
