"""Mailer benchmark: messages per second delivered to a local aiosmtpd sink.

    .venv/bin/python benchmarks/mailer.py [--singles 1000] [--invitations 10000]
        [--database-url mysql+pymysql://root@127.0.0.1:3306/vexpenses_mailer_bench]

Needs the mailer plugin with its test extra (aiosmtpd):
``pip install -e plugins/mailer[test]``.

1. Starts an aiosmtpd sink in its own process (so that it does not compete
   with the sender for the GIL), which accepts and counts every message.
2. Builds the real app (``make_app``) with the mailer enabled, its SMTP
   backend pointed at the sink, on SQLite in a temporary folder (default) or
   on the MariaDB database given, migrated from scratch.
3. **render+build**: renders and builds N invitation messages without sending
   them: the CPU cost of templates and MIME alone.
4. **single sends**: ``--singles`` welcome e-mails, each the ``mailer.send``
   task run in its own transaction as a worker runs it (one SMTP connection
   per message), one after the other.
5. **invitation batch**: ``--invitations`` imported users (inserted in bulk),
   then the ``mailer.invite`` task, as the csv_import plugin's hook queues it:
   one INSERT of the set-password tokens, then ``send_invitations`` tasks of
   ``--batch-size`` messages, each over one SMTP connection, run by the
   in-process task pool (``vexpenses.worker.threads`` threads, 2 by default),
   timed until the sink has counted every message.

Prints a Markdown table; never asserts. ``--rate-limit`` sets
``vexpenses.mailer.rate_limit`` (0, no cap, by default).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

from harness import JWT_SECRET, create_database, drop_database

HERE = os.path.dirname(os.path.abspath(__file__))


# -- the sink, in its own process ------------------------------------------------


def serve_sink():
    """``--serve-sink``: print the port, then answer "count" lines on stdin."""
    from vexpenses_mailer.testing import SMTPSink

    with SMTPSink(keep=False) as sink:
        print(sink.port, flush=True)
        for line in sys.stdin:
            if line.strip() == "count":
                print(sink.count, flush=True)
            elif line.strip() == "quit":
                break


class Sink:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-sink"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = int(self.proc.stdout.readline())

    def count(self):
        self.proc.stdin.write("count\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def wait_for(self, total, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= total:
                return True
            time.sleep(0.02)
        return False

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(10)


# -- the app ---------------------------------------------------------------------


def make_app(args, port, folder):
    from vexpenses_core import make_app as core_make_app

    database_url = args.database_url or f"sqlite:///{folder}/bench.sqlite"
    if args.database_url:
        drop_database(args.database_url)
        create_database(args.database_url)
    settings = {
        "vexpenses.env": "testing",
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.database_url": database_url,
        "vexpenses.plugins": "mailer",
        "vexpenses.auto_migrate": "true",
        "vexpenses.base_url": "https://vexpenses.example.com",
        "vexpenses.worker.threads": str(args.threads),
        "vexpenses.mailer.backend": "smtp",
        "vexpenses.mailer.smtp_url": f"smtp://127.0.0.1:{port}",
        "vexpenses.mailer.mail_from": "vexpenses <no-reply@vexpenses.example.com>",
        "vexpenses.mailer.rate_limit": str(args.rate_limit),
        "vexpenses.mailer.batch_size": str(args.batch_size),
    }
    for name in list(os.environ):  # the benchmark's settings, not the shell's
        if name.startswith("VEXPENSES_"):
            del os.environ[name]
    return core_make_app(settings)


def insert_users(registry, count, prefix):
    """Users as an import makes them: no password; one bulk INSERT."""
    import sqlalchemy as sa

    from vexpenses_core.db import utcnow
    from vexpenses_core.models import User

    now = utcnow()
    names = ["José Conceição", "Ângela Müller", "Zoë Brandão", "Ítalo Gonçalves"]
    rows = [{"name": f"{names[i % 4]} {i}", "email": f"{prefix}{i}@example.com",
             "is_admin": False, "created_at": now, "updated_at": now} for i in range(count)]
    with registry.dbengine.begin() as conn:
        conn.execute(sa.insert(User.__table__), rows)
        ids = conn.execute(sa.select(User.id).where(User.email.like(f"{prefix}%"))
                           .order_by(User.id)).scalars().all()
    return ids


# -- the measurements ------------------------------------------------------------


def bench_render(registry, count):
    from vexpenses_mailer.messages import build_message, recipient

    mailer = registry.mailer
    started = time.perf_counter()
    for i in range(count):
        context = {"name": f"José Conceição {i}", "email": f"u{i}@example.com",
                   "app_url": mailer.settings.app_url, "days": 7,
                   "invite_url": f"https://vexpenses.example.com/reset-password?token={i}"}
        subject, text, html = mailer.templates.render("invitation", "pt_BR", context)
        message = build_message(mailer.settings.mail_from,
                                recipient(context["name"], context["email"]), subject, text, html)
        message.as_bytes()  # what smtplib does before sending
    return time.perf_counter() - started


def bench_singles(registry, sink, count):
    from vexpenses_mailer import tasks

    from vexpenses_core.tasks import run_task

    ids = insert_users(registry, count, "single")
    before = sink.count()
    started = time.perf_counter()
    for user_id in ids:
        run_task(registry, tasks.send, ("welcome", user_id, {}, "pt_BR", f"bench:{user_id}"),
                 {})
    elapsed = time.perf_counter() - started
    assert sink.count() - before == count, "the sink did not get every message"
    return elapsed


def bench_invitations(registry, sink, count):
    from vexpenses_mailer import tasks

    from vexpenses_core.tasks import run_task

    ids = insert_users(registry, count, "invited")
    before = sink.count()
    started = time.perf_counter()
    run_task(registry, tasks.invite, (1, ids, "pt_BR"), {})
    tokens = time.perf_counter() - started
    if not sink.wait_for(before + count, timeout=600):
        raise SystemExit("the invitations did not all arrive within 10 minutes")
    elapsed = time.perf_counter() - started
    registry.queue.drain()
    return tokens, elapsed


def check_rows(registry, expected):
    import sqlalchemy as sa
    from vexpenses_mailer.models import MailDelivery

    with registry.dbengine.connect() as conn:
        counts = dict(conn.execute(
            sa.select(MailDelivery.status, sa.func.count()).group_by(MailDelivery.status)
        ).all())
    assert counts == {"sent": expected}, counts
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--invitations", type=int, default=10000)
    parser.add_argument("--render", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rate-limit", type=float, default=0)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--serve-sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_sink:
        return serve_sink()

    import logging

    logging.basicConfig(level=logging.WARNING)
    sink = Sink()
    with tempfile.TemporaryDirectory() as folder:
        app = make_app(args, sink.port, folder)
        registry = app.registry
        try:
            render = bench_render(registry, args.render)
            singles = bench_singles(registry, sink, args.singles)
            tokens, batch = bench_invitations(registry, sink, args.invitations)
            check_rows(registry, args.singles + args.invitations)
        finally:
            registry.queue.close()
            registry.dbengine.dispose()
            sink.close()

    backend = registry.dbengine.dialect.name
    print(f"\nvexpenses mailer benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"{backend}, aiosmtpd sink in its own process, rate limit "
          f"{args.rate_limit or 'none'}, batch size {args.batch_size}, "
          f"{args.threads} task threads\n")
    print("| run | messages | seconds | messages/s |")
    print("|---|---:|---:|---:|")
    print(f"| render+build only (no send) | {args.render:,} | {render:.2f} | "
          f"{args.render / render:,.0f} |")
    print(f"| single sends (`mailer.send`, one connection each) | {args.singles:,} | "
          f"{singles:.2f} | {args.singles / singles:,.0f} |")
    print(f"| invitation batch (`mailer.invite` + `send_invitations`) | "
          f"{args.invitations:,} | {batch:.2f} | {args.invitations / batch:,.0f} |")
    print(f"\nOf the batch, the `mailer.invite` task (tokens, one INSERT, sealing, queueing) "
          f"took {tokens:.2f} s. Every message was counted by the sink and recorded as sent.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
