"""``vexpenses import CONFIG FILE.csv``: an import from the command line, with a progress bar."""

import os
import sys
import time

from vexpenses_core.api import APIError
from vexpenses_core.scripting import bootstrap_app

from .models import FINISHED, PENDING, Import

BAR_WIDTH = 30
POLL_SECONDS = 0.5


def bar_line(record, counts, percent, eta):
    filled = BAR_WIDTH * percent // 100
    state = {PENDING: "waiting"}.get(record.status, f"{percent:3d}%")
    line = (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {state} "
            f"{counts['processed']}/{counts['total']} rows, {counts['imported']} imported, "
            f"{counts['rejected']} rejected, {counts['duplicates']} duplicates")
    if eta is not None and record.status not in (1, 2):
        line += f", ~{eta}s left"
    return line


def run_import(args):
    from vexpenses_core.accounts.users import UserService

    from .services import ImportService
    from .tasks import queue_import

    env = bootstrap_app(args.config_uri, require_plugin="csv_import")
    request = env["request"]
    out = sys.stdout
    try:
        with request.tm:
            uploader_id = None
            if args.uploader:
                user = UserService(request).by_email(args.uploader.strip().lower())
                if user is None:
                    print(f"vexpenses import: no user with e-mail {args.uploader}",
                          file=sys.stderr)
                    return 2
                uploader_id = user.id
            with open(args.file, "rb") as fileobj:
                record = ImportService(request).create(
                    fileobj, os.path.basename(args.file), uploader_id, not args.no_invitations)
            import_id = record.id
            queue_import(request, import_id)
        print(f"import {import_id}: {args.file} queued", file=out, flush=True)
        last = None
        while True:
            with request.tm:
                service = ImportService(request)
                record = request.dbsession.get(Import, import_id)
                counts, percent, eta = service.live(record)
                line = bar_line(record, counts, percent, eta)
                status, error = record.status, record.error
            if line != last:
                if out.isatty():
                    print("\r" + line.ljust(len(last or "")), end="", file=out, flush=True)
                else:
                    print(line, file=out, flush=True)
                last = line
            if status in (1, 2):
                break
            time.sleep(POLL_SECONDS)
        if out.isatty():
            print(file=out)
        print(f"import {import_id}: status {status}" + (f": {error}" if error else ""),
              file=out, flush=True)
        return 0 if status == FINISHED else 1
    except (APIError, OSError) as exc:
        message = exc.message if isinstance(exc, APIError) else str(exc)
        if isinstance(exc, APIError) and isinstance(exc.errors, dict):
            message = " ".join(m for messages in exc.errors.values() for m in messages)
        print(f"vexpenses import: {message}", file=sys.stderr)
        return 2
    finally:
        env["closer"]()


def resume_import(args):
    from . import tasks

    env = bootstrap_app(args.config_uri, require_plugin="csv_import")
    request = env["request"]
    try:
        with request.tm:
            record = request.dbsession.get(Import, args.import_id)
            if record is None:
                print(f"vexpenses import-resume: no import {args.import_id}", file=sys.stderr)
                return 2
            if record.status in (1, 2):
                print(f"import {record.id} has already finished (status {record.status})")
                return 0
            # The planning task, run again, re-queues every chunk not done yet.
            request.enqueue(tasks.plan, record.id)
        request.registry.queue.drain()
        print(f"import {args.import_id}: unfinished work queued again")
        return 0
    finally:
        env["closer"]()


def remove_old_files(args):
    from .services import ImportService

    env = bootstrap_app(args.config_uri, require_plugin="csv_import")
    request = env["request"]
    removed = 0
    try:
        while True:
            with request.tm:  # one transaction per batch of files
                count = ImportService(request).remove_old_files()
            removed += count
            if count == 0:
                break
        print(f"removed the files of {removed} finished imports")
        return 0
    finally:
        env["closer"]()


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "import",
        help="(csv_import plugin) import users from a CSV file, with a progress bar",
        description="Import users from FILE.csv (header Nome,E-mail,Data de nascimento) "
        "through the same service as the upload API, and show its progress until it ends. "
        "With Redis, the workers do the work; without, this process does. Exit status: 0 "
        "when every row was imported, 1 when some were rejected or the file failed, 2 for "
        "a usage error.",
    )
    parser.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    parser.add_argument("file", metavar="FILE.csv")
    parser.add_argument("--uploader", metavar="EMAIL",
                        help="the user the import belongs to (who may see its status)")
    parser.add_argument("--no-invitations", action="store_true",
                        help="do not ask the mailer to invite the imported users")
    parser.set_defaults(func=run_import)

    resume = subparsers.add_parser(
        "import-resume",
        help="(csv_import plugin) queue an unfinished import's remaining work again",
        description="Queue again the planning of import ID, or its chunks not done yet, "
        "e.g. after a chunk task failed with an error that has since been fixed. Safe to "
        "run at any time: finished work is never done twice.",
    )
    resume.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    resume.add_argument("import_id", metavar="ID", type=int)
    resume.set_defaults(func=resume_import)

    cleanup = subparsers.add_parser(
        "import-cleanup",
        help="(csv_import plugin) remove the files of imports finished longer ago than "
        "vexpenses.csv_import.file_retention",
        description="Remove from storage the uploaded files of imports that finished more "
        "than vexpenses.csv_import.file_retention seconds ago. Uploads and finishing imports "
        "already do this; run it from cron to keep to the retention when no one uploads. "
        "Safe to run at any time.",
    )
    cleanup.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    cleanup.set_defaults(func=remove_old_files)
