"""examples/supervisord.conf for real: supervisord runs several pserve processes on one
socket and `vexpenses worker --workers 8`; an import goes through it while a worker is
killed and replaced, and every web process is restarted with requests in flight."""

import http.client
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
import xmlrpc.client

import pytest
from sqlalchemy import func, select
from supervisor.xmlrpc import SupervisorTransport
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core import make_app
from vexpenses_core.models import User
from vexpenses_core.testing import (
    JWT_SECRET,
    base_settings,
    clean_tables,
    make_user,
    serving_pid,
    wait_for,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "supervisord.conf"
BIN = pathlib.Path(sys.executable).parent

HEAD = """\
[supervisord]
logfile = {tmp}/supervisord.log
pidfile = {tmp}/supervisord.pid
childlogdir = {tmp}

[unix_http_server]
file = {tmp}/supervisor.sock

[supervisorctl]
serverurl = unix://{tmp}/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

"""

INI = """\
[app:main]
use = egg:vexpenses-core
vexpenses.env = testing

[server:main]
use = call:vexpenses_core.server:serve_paste
listen = 127.0.0.1:{port}

[server:supervisord]
use = main
listen =
listen_fd = 0
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def config_from_example(tmp, ini, port):
    """The example with this machine's paths; secrets come from supervisord's environment."""
    text = EXAMPLE.read_text()
    assert "socket = tcp://0.0.0.0:6543\n" in text
    text = text.replace("tcp://0.0.0.0:6543", f"tcp://127.0.0.1:{port}")
    text = text.replace("/opt/vexpenses/bin/", f"{BIN}/")
    text = text.replace("/etc/vexpenses/production.ini", str(ini))
    text = text.replace("/var/lib/vexpenses", str(tmp))
    text = text.replace("/var/log/vexpenses", str(tmp))
    text = re.sub(r"^user = .*\n", "", text, flags=re.MULTILINE)  # we are not root's target
    text = re.sub(r"^environment =\n(?:[ \t]+.*\n)+", "", text, flags=re.MULTILINE)
    return HEAD.format(tmp=tmp) + text


@pytest.fixture
def stack(mysql_database, redis_url, tmp_path):
    run = uuid.uuid4().hex
    settings = base_settings(mysql_database, "csv_import", **{
        "vexpenses.redis_url": redis_url, "vexpenses.auto_migrate": "true",
        "vexpenses.redis_prefix": f"test:{run}:", "vexpenses.tasks.queue": f"test:{run}:tasks"})
    registry = make_app(settings).registry
    port = free_port()
    ini = tmp_path / "production.ini"
    ini.write_text(INI.format(port=port))
    conf = tmp_path / "supervisord.conf"
    conf.write_text(config_from_example(tmp_path, ini, port))
    env = dict(os.environ, VEXPENSES_DATABASE_URL=mysql_database, VEXPENSES_REDIS_URL=redis_url,
               VEXPENSES_PLUGINS="csv_import", VEXPENSES_JWT_SECRET=JWT_SECRET,
               VEXPENSES_REDIS_PREFIX=settings["vexpenses.redis_prefix"],
               VEXPENSES_TASK_QUEUE=settings["vexpenses.tasks.queue"],
               VEXPENSES_TASK_REDELIVERY_SECONDS="2", VEXPENSES_RATELIMIT_ENABLED="false",
               VEXPENSES_CSV_IMPORT_CHUNK_BYTES="4000", VEXPENSES_CSV_IMPORT_BATCH_ROWS="20",
               VEXPENSES_CSV_IMPORT_BATCH_DELAY="0.05")
    proc = subprocess.Popen([str(BIN / "supervisord"), "-n", "-c", str(conf)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield registry, port, tmp_path, conf
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()
        for key in registry.redis.scan_iter(match=settings["vexpenses.redis_prefix"] + "*"):
            registry.redis.delete(key)
        registry.redis.close()


def ctl(conf, *args):
    return subprocess.run([str(BIN / "supervisorctl"), "-c", str(conf), *args],
                          capture_output=True, text=True, timeout=30).stdout


def rpc(conf, method, *args):
    """Call supervisord's XML-RPC interface, which supervisorctl uses."""
    transport = SupervisorTransport(None, None, f"unix://{conf.parent}/supervisor.sock")
    with xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport) as proxy:
        return getattr(proxy.supervisor, method)(*args)


def web_pids(conf):
    return sorted(info["pid"] for info in rpc(conf, "getAllProcessInfo")
                  if info["group"] == "vexpenses-web" and info["statename"] == "RUNNING")


def answering_pid(port, pids):
    """The web process that answers a request on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/imports")
        conn.getresponse().read()
        return serving_pid(conn.sock, pids)  # kept alive: still held by its process
    finally:
        conn.close()


def children(pid):
    try:
        text = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(child) for child in text.split()
            if b"spawn_main" in pathlib.Path(f"/proc/{child}/cmdline").read_bytes()]


def call(url, token, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {token}"})
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def upload(base, token, content):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"pessoas.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    return call(base + "/api/v1/user/upload", token, body,
                f"multipart/form-data; boundary={boundary}")


def web_up(base):
    try:
        with urllib.request.urlopen(base + "/imports", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_supervisord_example_runs_an_import_through_a_killed_worker(stack):
    registry, port, tmp, conf = stack
    base = f"http://127.0.0.1:{port}"
    assert wait_for(lambda: web_up(base), 60), (tmp / "supervisord.log").read_text()
    worker_pid = int(ctl(conf, "pid", "vexpenses-worker").strip())
    assert wait_for(lambda: len(children(worker_pid)) == 8, 90)
    assert wait_for(lambda: ctl(conf, "status").count("RUNNING") == 3, 30), ctl(conf, "status")

    # Two web processes (the example's numprocs), and each of them answers.
    pids = web_pids(conf)
    assert len(pids) == 2, ctl(conf, "status")
    seen = set()
    assert wait_for(lambda: seen.add(answering_pid(port, pids)) or seen == set(pids), 60), seen

    _, token = make_user(registry, email="ana@example.com")
    code, answer = upload(base, token, make_csv(people(2000)))
    assert code == 201, answer
    url = f"{base}/api/v1/user/import-status/{answer['data']['id']}"
    assert wait_for(lambda: call(url, token)[1]["data"]["progress"] > 10, 60)
    victim = children(worker_pid)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: len(children(worker_pid)) == 8
                    and victim not in children(worker_pid), 30)

    final = wait_for(lambda: (data := call(url, token)[1]["data"])["status"] in (1, 2) and data,
                     90)
    assert final and final["status"] == 1, final
    assert (final["imported"], final["processed"], final["total"]) == (2000, 2000, 2000)
    db = registry.dbsession_factory()
    try:
        assert db.scalar(select(func.count()).select_from(User)) == 2001
    finally:
        db.close()
    assert ctl(conf, "status").count("RUNNING") == 3
    assert_web_restarts_gracefully(conf, port)
    assert_one_at_a_time_the_port_stays_open(conf, port)


def assert_web_restarts_gracefully(conf, port):
    """Restarting every web process lets the requests in flight on each finish
    (stopsignal = INT; on TERM pserve would drop them). A login takes a few
    hundred ms of argon2; logins go out until every process has one unanswered."""
    pids = web_pids(conf)
    body = json.dumps({"email": "ana@example.com", "password": "not-her-password"})
    pending, answered, results = {}, set(), []

    def answer(conn):
        try:
            response = conn.getresponse()
            answered.add(conn)
            results.append((response.status, json.loads(response.read())["status"]))
        except Exception as exc:  # a dropped connection, a truncated answer
            results.append(repr(exc))
        finally:
            conn.close()

    threads = []
    while len(threads) < 12 and set(pending.values()) != set(pids):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/api/v1/user/authenticate", body,
                     {"Content-Type": "application/json"})
        pid = wait_for(lambda conn=conn: serving_pid(conn.sock, pids), 10)
        pending[conn] = pid
        threads.append(threading.Thread(target=answer, args=(conn,)))
        threads[-1].start()
        pending = {c: p for c, p in pending.items() if c not in answered}  # in flight
    assert set(pending.values()) == set(pids), "every web process has a login in flight"
    # What `supervisorctl restart vexpenses-web:*` does, without its start-up time.
    rpc(conf, "stopProcessGroup", "vexpenses-web")
    rpc(conf, "startProcessGroup", "vexpenses-web")
    for thread in threads:
        thread.join(30)
    assert results == [(401, False)] * len(threads)
    assert wait_for(lambda: len(web_pids(conf)) == 2, 30)
    assert not set(web_pids(conf)) & set(pids)  # all of them were restarted


def assert_one_at_a_time_the_port_stays_open(conf, port):
    """Restarting the web processes one at a time, no connection is refused: the
    others hold the socket open meanwhile (docs/deployment.md)."""
    refused, stop = [], threading.Event()

    def knock():
        while not stop.is_set():
            try:
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
            except ConnectionRefusedError as exc:
                refused.append(exc)
            stop.wait(0.01)

    thread = threading.Thread(target=knock)
    thread.start()
    try:
        for name in ("vexpenses-web_00", "vexpenses-web_01"):
            rpc(conf, "stopProcess", f"vexpenses-web:{name}")
            rpc(conf, "startProcess", f"vexpenses-web:{name}")  # RUNNING after startsecs
    finally:
        stop.set()
        thread.join(30)
    assert refused == []
