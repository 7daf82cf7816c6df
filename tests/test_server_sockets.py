"""The web server on an inherited socket (``listen_fd``), as supervisord's
``[fcgi-program:...]`` runs it: several ``pserve`` processes on one listening
socket, each refusing a body too large for its route before reading it.

The processes here get the socket as their standard input (file descriptor
0), exactly as supervisord hands it to them, and run production.ini's own
``[server:main]`` and ``[server:supervisord]`` sections.
"""

import configparser
import json
import os
import pathlib
import socket
import subprocess
import sys

import pytest

from vexpenses_core import make_app
from vexpenses_core.accounts.views import SMALL_BODY_BYTES
from vexpenses_core.settings import environ_for
from vexpenses_core.testing import base_settings, serving_pid, wait_for, write_ini

ROOT = pathlib.Path(__file__).resolve().parent.parent
PSERVE = str(pathlib.Path(sys.executable).with_name("pserve"))


def shipped_server_sections(**supervisord):
    """production.ini's [server:...] sections, as text to append to an ini file;
    keywords change options of [server:supervisord]."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "production.ini")
    parser["server:supervisord"].update(supervisord)
    text = ""
    for section in ("server:main", "server:supervisord"):
        text += f"\n[{section}]\n"
        text += "".join(f"{name} = {value}\n" for name, value in parser[section].items())
    return text


def ini_with(tmp_path, server_text):
    path = write_ini(tmp_path)
    path.write_text(path.read_text() + server_text)
    return str(path)


@pytest.fixture
def environ(tmp_path):
    settings = base_settings(f"sqlite:///{tmp_path}/app.db", "csv_import",
                             **{"vexpenses.auto_migrate": "true",
                                "vexpenses.upload_dir": str(tmp_path / "uploads")})
    make_app(settings).registry.dbengine.dispose()  # migrated once, not by each process
    keep = {k: v for k, v in os.environ.items() if not k.startswith("VEXPENSES_")}
    return {**keep, **environ_for(settings), "VEXPENSES_AUTO_MIGRATE": "false"}


def start(ini, environ, stdin, log):
    return subprocess.Popen([PSERVE, "--server-name", "supervisord", ini], stdin=stdin,
                            stdout=log, stderr=subprocess.STDOUT, env=environ)


@pytest.fixture
def shared(tmp_path, environ):
    """Two pserve processes serving one listening socket; yields (port, pids)."""
    ini = ini_with(tmp_path, shipped_server_sections())
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    log = open(tmp_path / "pserve.log", "wb")
    procs = [start(ini, environ, listener.fileno(), log) for _ in range(2)]
    listener.close()  # the processes hold it now, as under supervisord
    try:
        yield port, [proc.pid for proc in procs]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        log.close()
        print((tmp_path / "pserve.log").read_text(errors="replace"))


def post(port, path, body_bytes):
    """POST a ``body_bytes`` Content-Length and only the headers; the status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\nHost: localhost\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {body_bytes}\r\n"
                      "Connection: close\r\n\r\n").encode())
        response = b""
        while data := sock.recv(65536):
            response += data
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def get_on_new_connection(port, pids):
    """GET a page on a new keep-alive connection; the pid that answered it."""
    client = socket.create_connection(("127.0.0.1", port), timeout=30)
    client.sendall(b"GET /imports HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert client.recv(65536).startswith(b"HTTP/1.1 ")
    pid = serving_pid(client, pids)  # still open: the answering process holds it
    client.close()
    return pid


def test_processes_on_one_inherited_socket_all_serve(shared):
    port, pids = shared
    assert wait_for(lambda: ping(port), 60)
    seen = set()
    assert wait_for(lambda: seen.add(get_on_new_connection(port, pids)) or seen == set(pids),
                    60, interval=0), seen


def test_the_inherited_socket_refuses_a_body_too_large_for_its_route(shared):
    port, _ = shared
    assert wait_for(lambda: ping(port), 60)
    for _ in range(4):  # whichever process answers
        status, body = post(port, "/api/v1/user/authenticate", 50 * 1024 * 1024)
        assert status == 413
        assert body == {"status": False, "message": "The request body is too large.",
                        "errors": f"The request body may be at most {SMALL_BODY_BYTES} bytes."}


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"GET /imports HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return sock.recv(100).startswith(b"HTTP/1.1 ")
    except OSError:
        return False


@pytest.mark.parametrize("stdin, options, expected", [
    (subprocess.DEVNULL, {}, "Socket operation on non-socket"),
    ("bound", {}, "file descriptor 0 is not a listening socket"),
    ("listening", {"listen": "127.0.0.1:0"}, "listen_fd takes the place of listen"),
    ("listening", {"host": "127.0.0.1"}, "listen_fd takes the place of listen"),
    ("listening", {"listen_fd": "zero"}, "listen_fd must be a file descriptor's number"),
])
def test_listen_fd_without_a_listening_socket_stops_pserve_with_one_line(
        tmp_path, environ, stdin, options, expected):
    ini = ini_with(tmp_path, shipped_server_sections(**options))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        if stdin == "listening":
            sock.listen()
        result = subprocess.run(
            [PSERVE, "--server-name", "supervisord", ini], capture_output=True, text=True,
            stdin=sock.fileno() if stdin != subprocess.DEVNULL else stdin, env=environ,
            timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("vexpenses")]
    assert line.startswith("vexpenses: configuration error: [server:...] cannot serve on "
                           "the socket of file descriptor ")
    assert expected in line
