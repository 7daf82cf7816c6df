"""`vexpenses import`'s progress: a bar redrawn in place at a terminal, with log lines
kept off it, and plain lines through a pipe."""

import io
import logging
import os
import pathlib
import re
import subprocess
import sys
import types
import uuid

import pytest
from vexpenses_csv_import.commands import ProgressLine
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core.testing import JWT_SECRET, write_ini
from vexpenses_core.testing.terminal import CTRL_C, Terminal, screen_lines

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))
BAR = re.compile(r"^\[[#.]+\] +(waiting|\d+%) \d+/\d+ rows, \d+ imported")
QUEUED = re.compile(r"^import \d+: \S+ queued$")
SUMMARY = re.compile(r"^import (\d+): status (\d+)(: .+)?$")
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d,\d+ +(INFO|WARNING|ERROR)")


@pytest.fixture
def command(tmp_path):
    """``vexpenses import`` arguments and environment: a new SQLite database, no Redis
    (this process does the work), small chunks, and the root logger at INFO."""
    csv = tmp_path / "people.csv"
    csv.write_bytes(make_csv(people(40) + [("x", "y", "z")]))
    env = dict(os.environ, VEXPENSES_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}",
               VEXPENSES_PLUGINS="csv_import", VEXPENSES_JWT_SECRET=JWT_SECRET,
               VEXPENSES_AUTO_MIGRATE="true", VEXPENSES_REDIS_URL="",
               VEXPENSES_UPLOAD_DIR=str(tmp_path / "uploads"),
               VEXPENSES_CSV_IMPORT_CHUNK_BYTES="200", VEXPENSES_CSV_IMPORT_BATCH_ROWS="5")
    return [VEXPENSES, "import", str(write_ini(tmp_path, level="INFO")), str(csv)], env


def test_at_a_terminal_the_bar_is_redrawn_in_place_without_log_lines(command):
    argv, env = command
    with Terminal(argv, env) as terminal:
        assert terminal.wait() == 1, terminal.output  # one row is rejected
    assert "\r[" in terminal.output  # drawn in place, not line after line
    assert not LOG_LINE.search(terminal.output), terminal.output
    screen = [line for line in terminal.screen if line]
    assert QUEUED.match(screen[0]), screen
    assert BAR.match(screen[1]) and "100% 41/41 rows, 40 imported, 1 rejected" in screen[1]
    assert SUMMARY.match(screen[2]).group(2) == "2"
    assert len(screen) == 3, screen
    assert len(screen[1]) < 80  # the terminal is 80 wide: the bar never wraps


def test_verbose_prints_info_lines_above_the_bar_never_across_it(command):
    argv, env = command
    with Terminal([*argv, "--verbose"], env) as terminal:
        assert terminal.wait() == 1, terminal.output
    screen = [line for line in terminal.screen if line]
    logged = [line for line in screen if LOG_LINE.search(line)]
    assert any("Running upgrade" in line for line in logged)  # start-up's, kept too
    assert any("Executing task csv_import" in line for line in logged)
    for line in logged:
        assert not BAR.search(line) and "rows," not in line, line
    bars = [line for line in screen if BAR.match(line)]
    assert len(bars) == 1 and "100% 41/41 rows" in bars[0]
    assert SUMMARY.match(screen[-1])
    assert screen.index(bars[0]) == len(screen) - 2  # the bar stays below every log line


def test_through_a_pipe_progress_is_plain_lines_and_logging_is_untouched(command):
    argv, env = command
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "\r" not in result.stdout and "\x1b" not in result.stdout
    lines = result.stdout.splitlines()
    assert QUEUED.match(lines[0])
    assert all(BAR.match(line) for line in lines[1:-1]), lines
    assert "] 100% 41/41 rows, 40 imported, 1 rejected, 0 duplicates" in lines[-2]
    import_id, status, _ = SUMMARY.match(lines[-1]).groups()
    assert (import_id, status) == ("1", "2")
    assert "Executing task csv_import" in result.stderr  # the ini's INFO, as configured


def test_ctrl_c_stops_watching_in_one_line(command, redis_url):
    """With Redis and no worker the import waits; Ctrl-C leaves it, no traceback."""
    argv, env = command
    prefix = f"test:{uuid.uuid4().hex}:"
    env = dict(env, VEXPENSES_REDIS_URL=redis_url, VEXPENSES_REDIS_PREFIX=prefix,
               VEXPENSES_TASK_QUEUE=f"{prefix}tasks")
    with Terminal(argv, env) as terminal:
        terminal.expect("waiting 0/0 rows")
        terminal.send(CTRL_C)
        assert terminal.wait() == 130, terminal.output
    last = terminal.screen[-2] if not terminal.screen[-1] else terminal.screen[-1]
    assert re.fullmatch(r"vexpenses import: stopped watching import 1; if it does not finish, "
                        r"vexpenses import-resume \S+ 1 queues what is left", last), last
    assert "Traceback" not in terminal.output


# -- ProgressLine, in this process ------------------------------------------------


def fake_import(processed, total=10):
    counts = {"processed": processed, "total": total, "imported": processed,
              "rejected": 0, "duplicates": 0}
    return types.SimpleNamespace(status=3), counts, processed * 100 // total, None


@pytest.fixture
def pty_out():
    """A terminal's writing end, and a function that reads what it shows."""
    master, slave = os.openpty()
    out = os.fdopen(slave, "w")

    def shown():
        out.flush()
        data = b""
        while True:
            import select

            if not select.select([master], [], [], 0)[0]:
                return screen_lines(data.decode().replace("\r\n", "\n"))
            data += os.read(master, 65536)

    yield out, shown
    out.close()
    os.close(master)


def test_warnings_and_errors_are_printed_above_the_bar(pty_out):
    out, shown = pty_out
    log = logging.getLogger("test_cli_progress")
    log.propagate, log.level = False, logging.DEBUG
    on_terminal, in_file = logging.StreamHandler(out), logging.StreamHandler(io.StringIO())
    log.handlers = [on_terminal, in_file]
    try:
        with ProgressLine(out) as line:
            line.show(*fake_import(3))
            log.info("an INFO line")
            log.warning("a WARNING line")
            line.show(*fake_import(5))
            log.error("an ERROR line")
        assert log.handlers == [on_terminal, in_file]  # put back
    finally:
        log.handlers = []
    screen = shown()
    assert screen[:2] == ["a WARNING line", "an ERROR line"]
    assert BAR.match(screen[2]) and " 50% 5/10 rows" in screen[2]
    assert screen[3:] == [""]
    # a log file is not a terminal: it keeps every line
    assert in_file.stream.getvalue().splitlines() == [
        "an INFO line", "a WARNING line", "an ERROR line"]
