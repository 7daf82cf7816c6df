"""``vexpenses import CONFIG FILE.csv``: an import from the command line, with a progress bar."""

import contextlib
import logging
import os
import signal
import sys
import threading
import time

from vexpenses_core.api import APIError
from vexpenses_core.scripting import bootstrap_app

from .models import FINISHED, PENDING, Import

BAR_WIDTH = 30
MIN_BAR_WIDTH = 10
TEXT_ROOM = 70  # the words after the bar, about: the bar keeps one width
POLL_SECONDS = 0.5
CLEAR_LINE = "\r\x1b[K"  # to the start of the line, and erase it


def bar_line(record, counts, percent, eta, width=BAR_WIDTH, short=False):
    text = progress_text(record, counts, percent, eta, short)
    filled = width * percent // 100
    return f"[{'#' * filled}{'.' * (width - filled)}] {text}"


def progress_text(record, counts, percent, eta, short=False):
    """The words after the bar; ``short`` leaves out the counts that are 0."""
    state = {PENDING: "waiting"}.get(record.status, f"{percent:3d}%")
    parts = [f"{state} {counts['processed']}/{counts['total']} rows",
             f"{counts['imported']} imported"]
    parts += [f"{counts[name]} {name}" for name in ("rejected", "duplicates")
              if counts[name] or not short]
    if eta is not None and record.status not in (1, 2):
        parts.append(f"~{eta}s left")
    return ", ".join(parts)


def writes_to_terminal(handler):
    stream = getattr(handler, "stream", None)
    return isinstance(handler, logging.StreamHandler) and stream is not None \
        and hasattr(stream, "isatty") and stream.isatty()


class ProgressLine:
    """A line redrawn in place at the bottom of a terminal, log records printed above it.

    While it is open, the log handlers that write to a terminal show WARNING
    and above only (everything with ``verbose``): each record clears the
    line, is printed, and the line is drawn again below it. Handlers that
    write elsewhere, a log file for instance, keep every record.
    """

    def __init__(self, out, verbose=False):
        self.out = out
        self.level = logging.NOTSET if verbose else logging.WARNING
        self.text = ""
        self.lock = threading.RLock()  # the tasks of an in-process queue log from a thread
        self.swapped = []

    def __enter__(self):
        wrappers = {}
        known = list(logging.Logger.manager.loggerDict.values())  # a copy: threads add
        loggers = [logging.getLogger(), *(x for x in known if isinstance(x, logging.Logger))]
        for logger in loggers:
            for index, handler in enumerate(logger.handlers):
                if writes_to_terminal(handler):
                    if handler not in wrappers:
                        wrappers[handler] = AboveTheLine(handler, self)
                    logger.handlers[index] = wrappers[handler]
                    self.swapped.append((logger, wrappers[handler], handler))
        return self

    def __exit__(self, *exc_info):
        for logger, wrapper, handler in self.swapped:
            logger.handlers = [handler if h is wrapper else h for h in logger.handlers]
        with self.lock:
            if self.text:
                self.out.write("\n")
                self.out.flush()
            self.text = ""

    def columns(self):
        try:
            columns = os.get_terminal_size(self.out.fileno()).columns
            return columns if columns > 0 else 80  # a pty nobody sized
        except (OSError, ValueError):
            return 80

    def show(self, record, counts, percent, eta):
        """Draw the bar, never wider than the terminal: a wrapped line could not be
        redrawn in place. A narrow terminal gets a shorter bar, then shorter words."""
        columns = self.columns()
        width = max(MIN_BAR_WIDTH, min(BAR_WIDTH, columns - 4 - TEXT_ROOM))
        short = width + 3 + len(progress_text(record, counts, percent, eta)) >= columns
        text = bar_line(record, counts, percent, eta, width, short)[:columns - 1]
        with self.lock:
            if text != self.text:
                self.text = text
                self.draw()

    def print(self, text):
        """A line of its own, above the bar."""
        with self.lock:
            self.clear()
            self.out.write(text + "\n")
            self.draw()

    def draw(self):
        if self.text:
            self.out.write("\r" + self.text + "\x1b[K")
        self.out.flush()

    def clear(self):
        if self.text:
            self.out.write(CLEAR_LINE)
            self.out.flush()


class AboveTheLine(logging.Handler):
    """Stands in for a terminal's log handler while a :class:`ProgressLine` is shown."""

    def __init__(self, handler, line):
        super().__init__(line.level)
        self.handler = handler
        self.line = line

    def emit(self, record):
        with self.line.lock:
            self.line.clear()
            self.handler.handle(record)
            self.line.draw()


class PlainLines:
    """Progress for a pipe or a file: a line each time it changes, logging left alone."""

    def __init__(self, out):
        self.out = out
        self.last = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        pass

    def show(self, record, counts, percent, eta):
        line = bar_line(record, counts, percent, eta)
        if line != self.last:
            print(line, file=self.out, flush=True)
            self.last = line

    def print(self, text):
        print(text, file=self.out, flush=True)


@contextlib.contextmanager
def quiet_start(quiet):
    """At a terminal, no INFO lines while the app starts (Alembic's, for one)."""
    if not quiet:
        yield
        return
    before = logging.root.manager.disable
    logging.disable(max(before, logging.INFO))
    try:
        yield
    finally:
        logging.disable(before)


@contextlib.contextmanager
def ctrl_c_between_polls():
    """Ctrl-C takes effect between two polls, never inside a database or Redis call,
    where a library may log it as an error, or swallow it in a hook and go on."""
    interrupted = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: interrupted.append(signum))
    try:
        yield interrupted
    finally:
        signal.signal(signal.SIGINT, previous)


def run_import(args):
    from vexpenses_core.accounts.users import UserService

    from .services import ImportService
    from .tasks import queue_import

    out = sys.stdout
    with quiet_start(out.isatty() and sys.stderr.isatty() and not args.verbose):
        env = bootstrap_app(args.config_uri, require_plugin="csv_import")
    with env:
        request = env["request"]
        progress = ProgressLine(out, args.verbose) if out.isatty() else PlainLines(out)
        import_id = None
        try:
            with progress:
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
                            fileobj, os.path.basename(args.file), uploader_id,
                            not args.no_invitations)
                    import_id = record.id
                    queue_import(request, import_id)
                progress.print(f"import {import_id}: {args.file} queued")
                with ctrl_c_between_polls() as interrupted:
                    while True:
                        with request.tm:
                            service = ImportService(request)
                            record = request.dbsession.get(Import, import_id)
                            progress.show(record, *service.live(record))
                            status, error = record.status, record.error
                        if status in (1, 2):
                            break
                        time.sleep(POLL_SECONDS)
                        if interrupted:
                            raise KeyboardInterrupt
            print(f"import {import_id}: status {status}" + (f": {error}" if error else ""),
                  file=out, flush=True)
            return 0 if status == FINISHED else 1
        except (APIError, OSError) as exc:
            message = exc.message if isinstance(exc, APIError) else str(exc)
            if isinstance(exc, APIError) and isinstance(exc.errors, dict):
                message = " ".join(m for messages in exc.errors.values() for m in messages)
            print(f"vexpenses import: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            if import_id is None:
                print("vexpenses import: cancelled; no import was created", file=sys.stderr)
            else:
                print(f"vexpenses import: stopped watching import {import_id}; if it does not "
                      f"finish, vexpenses import-resume {args.config_uri} {import_id} "
                      "queues what is left", file=sys.stderr)
            return 130


def resume_import(args):
    from . import tasks

    with bootstrap_app(args.config_uri, require_plugin="csv_import") as env:
        request = env["request"]
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


def remove_old_files(args):
    from .files import StorageUnavailable
    from .services import ImportService

    with bootstrap_app(args.config_uri, require_plugin="csv_import") as env:
        request = env["request"]
        removed = 0
        while True:
            try:
                with request.tm:  # one transaction per batch of files
                    count = ImportService(request).remove_old_files()
            except StorageUnavailable as exc:
                # The batch's rows stay unmarked: the next run deletes its files again.
                print(f"vexpenses import-cleanup: the storage is unavailable ({exc}); "
                      f"removed the files of {removed} finished imports", file=sys.stderr)
                return 1
            removed += count
            if count == 0:
                break
        print(f"removed the files of {removed} finished imports")
        return 0


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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="on a terminal, show INFO log lines above the progress bar too "
                        "(without it, only warnings and errors)")
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
