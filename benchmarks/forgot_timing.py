"""forgot-password timing: does the answer take longer for a known address?

    .venv/bin/python benchmarks/forgot_timing.py [--requests 2000]
        [--database-url mysql+pymysql://root@127.0.0.1:3306/vexpenses_forgot_bench]
        [--redis-url redis://127.0.0.1:6379/14] [--plugins "mailer audit_log"]

Builds the real app (``make_app``) in this process, on SQLite in a temporary
folder (default) or the MariaDB database given (dropped and migrated from
scratch), with one user, and the rate limits off. Then sends
``--requests`` POST /api/v1/user/forgot-password through WebTest for each
of two addresses, the known one and an unknown one, interleaved (known,
unknown, known...) so that both see the same warm-up and the same noise.
Only the request is timed, not the task it queues: with ``--redis-url`` the
task goes to the Redis stream through the outbox and nobody consumes it;
without, the in-process pool runs it in the background after the answer.

Prints the median and the 90th percentile of each address, in ms, and
their differences. Never asserts: the tests prove the two paths do the same
work (tests/test_forgot_enumeration.py); this shows what that costs in time.
"""

import argparse
import statistics
import tempfile
import time

from harness import JWT_SECRET, create_database, drop_database

KNOWN = "ana@example.com"
UNKNOWN = "nobody@example.com"


def build_app(args, folder):
    from vexpenses_core import make_app

    database_url = args.database_url or f"sqlite:///{folder}/forgot.sqlite"
    if args.database_url:
        drop_database(args.database_url)
        create_database(args.database_url)
    settings = {
        "vexpenses.env": "testing",
        "vexpenses.database_url": database_url,
        "vexpenses.redis_url": args.redis_url,
        "vexpenses.redis_prefix": "bench-forgot:",
        "vexpenses.tasks.queue": "bench-forgot:tasks",
        "vexpenses.plugins": args.plugins,
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.auto_migrate": "true",
        "vexpenses.ratelimit.enabled": "false",
        "vexpenses.mailer.backend": "file",
        "vexpenses.mailer.file_dir": f"{folder}/mail",
        "vexpenses.argon2.time_cost": "1",
        "vexpenses.argon2.memory_cost": "8192",
        "vexpenses.argon2.parallelism": "1",
    }
    return make_app(settings)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per address")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--redis-url", default="")
    parser.add_argument("--plugins", default="", help="e.g. 'mailer audit_log'")
    args = parser.parse_args()

    import webtest

    from vexpenses_core.testing import make_user

    with tempfile.TemporaryDirectory() as folder:
        app = build_app(args, folder)
        registry = app.registry
        make_user(registry, email=KNOWN, password="a password 123")
        client = webtest.TestApp(app, extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        if args.redis_url:
            registry.redis.delete(registry.settings["vexpenses.tasks.queue"])
        timings = {KNOWN: [], UNKNOWN: []}
        for _ in range(20):  # warm both paths up, untimed
            for email in timings:
                client.post_json("/api/v1/user/forgot-password", {"email": email})
        for _ in range(args.requests):
            for email in timings:
                start = time.perf_counter()
                client.post_json("/api/v1/user/forgot-password", {"email": email})
                timings[email].append((time.perf_counter() - start) * 1000)
        registry.queue.drain(120)
        if args.redis_url:
            registry.redis.delete(registry.settings["vexpenses.tasks.queue"])
        registry.queue.close()

    print(f"database: {args.database_url or 'sqlite (temporary)'}   "
          f"redis: {args.redis_url or '-'}   plugins: {args.plugins or '-'}   "
          f"requests: {args.requests} per address")
    print("| address | median ms | p90 ms |")
    print("|---|---:|---:|")
    rows = {}
    for email, values in timings.items():
        rows[email] = (statistics.median(values), percentile(values, 0.9))
        print(f"| {email} | {rows[email][0]:.3f} | {rows[email][1]:.3f} |")
    median = rows[KNOWN][0] - rows[UNKNOWN][0]
    p90 = rows[KNOWN][1] - rows[UNKNOWN][1]
    print(f"| known - unknown | {median:+.3f} | {p90:+.3f} |")


if __name__ == "__main__":
    main()
