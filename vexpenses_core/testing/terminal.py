"""A command run in a pseudo-terminal, the way a person at a keyboard runs it.

The command is a session leader whose controlling terminal is the pty, so
``getpass`` reads from ``/dev/tty`` with echo off, Ctrl-C (``"\\x03"``) is
SIGINT and Ctrl-D (``"\\x04"``) an end of file, as in a real terminal.
"""

import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import time

CTRL_C = "\x03"
CTRL_D = "\x04"


# Run before the command, in its process: a new session whose controlling terminal is
# the pty on stdin (no preexec_fn, which is unsafe in a test process with threads).
LOGIN = "import os, sys; os.login_tty(0); os.execv(sys.argv[1], sys.argv[1:])"


def screen_lines(text):
    """The lines a terminal would show for ``text``: a carriage return goes back to the
    start of the line, ``ESC [K`` erases from there to its end."""
    lines = []
    for raw in text.split("\n"):
        line, cursor = [], 0
        for part in raw.split("\x1b[K"):
            del line[cursor:]  # before each part but the first: an erase
            for char in part:
                if char == "\r":
                    cursor = 0
                else:
                    line[cursor:cursor + 1] = [char]
                    cursor += 1
        lines.append("".join(line))
    return lines


class Terminal:
    """``Terminal(argv, env)``: ``expect`` what it prints, ``send`` keys, ``wait`` for it.

    ``output`` is everything printed so far, with the terminal's CRLF read as LF.
    The timeouts only stop a test that would hang; they measure nothing.
    """

    def __init__(self, argv, env, columns=80, rows=24, timeout=120):
        self.timeout = timeout
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", LOGIN, *argv], env=env,
                stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self.raw = b""
        self.seen = 0  # how much of output expect has matched already
        self.closed = False

    @property
    def output(self):
        return self.raw.decode(errors="replace").replace("\r\n", "\n")

    @property
    def screen(self):
        """What the terminal shows, line by line (see :func:`screen_lines`)."""
        return screen_lines(self.output)

    def _read(self, deadline):
        """Read what is there, waiting until ``deadline``; False at the end of the output."""
        ready, _, _ = select.select([self.master], [], [], max(0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every copy of the pty's other side is closed
            data = b""
        if not data:
            self.closed = True
            return False
        self.raw += data
        return True

    def expect(self, text):
        """Wait until ``text`` is printed after what the last expect matched."""
        deadline = time.monotonic() + self.timeout
        while True:
            found = self.output.find(text, self.seen)
            if found >= 0:
                self.seen = found + len(text)
                return
            if self.closed or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never came; the terminal shows:\n{self.output}")
            self._read(deadline)

    def send(self, keys):
        os.write(self.master, keys.encode())

    def wait(self):
        """Read everything until the command exits; its exit status."""
        deadline = time.monotonic() + self.timeout
        while not self.closed and time.monotonic() < deadline:
            self._read(deadline)
        return self.process.wait(timeout=max(1, deadline - time.monotonic()))

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
