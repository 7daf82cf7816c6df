"""Subprocesses of a test: an ini file for them, and ``vexpenses worker`` supervisors."""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import time

from vexpenses_core.settings import environ_for

TESTING_INI = """\
[app:main]
use = egg:vexpenses-core
vexpenses.env = testing

[loggers]
keys = root

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = {level}
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(process)d][%(request_id)s] %(message)s
"""


def write_ini(directory, level="INFO"):
    """An ini file for subprocesses (workers, commands); settings come from VEXPENSES_*.

    ``level`` is the root logger's: a benchmark passes WARNING to keep logging off its
    measurement."""
    path = directory / "testing.ini"
    path.write_text(TESTING_INI.format(level=level))
    return path


def wait_for(predicate, timeout, interval=0.1):
    """Poll ``predicate`` until it returns something true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def worker_pids(supervisor_pid):
    """The worker processes of a ``vexpenses worker`` supervisor (not multiprocessing's
    resource tracker)."""
    try:
        text = pathlib.Path(f"/proc/{supervisor_pid}/task/{supervisor_pid}/children").read_text()
    except FileNotFoundError:
        return []
    workers = []
    for child in text.split():
        try:
            cmdline = pathlib.Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in cmdline:
            workers.append(int(child))
    return workers


@contextlib.contextmanager
def run_workers(settings, directory, count=2, **env):
    """Run ``vexpenses worker CONFIG --workers count`` with the settings of a test app.

    ``settings`` are a registry's settings (every core setting is passed on,
    see :func:`~vexpenses_core.settings.environ_for`); extra ``VEXPENSES_*``
    variables may be given as keywords. Yields the supervisor's ``Popen``;
    stops it gracefully after.
    """
    command = str(pathlib.Path(sys.executable).with_name("vexpenses"))
    # No migrating: the test database is migrated already.
    environ = {**os.environ, **environ_for(settings), "VEXPENSES_AUTO_MIGRATE": "false", **env}
    log_path = directory / "worker.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [command, "worker", str(write_ini(directory)), "--workers", str(count)],
            env=environ, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            if not wait_for(lambda: len(worker_pids(proc.pid)) == count, 30):
                raise RuntimeError(f"workers did not start:\n{log_path.read_text()}")
            yield proc
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(45) == 0, "workers did not stop cleanly"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            print(log_path.read_text())
