"""Three hosts that share nothing but MariaDB, Redis through Sentinel, and a bucket.

Web hosts A and B (``pserve production.ini``) and worker host C (``vexpenses
worker production.ini --workers 2``) each run in a folder of their own, with
their own ini file and upload folder, as separate process groups. A file
uploaded through A is imported by C's workers and read back through B; a
logout on A is seen by B at once; the audit log, read through B, holds rows
of both web hosts and of the workers, in a chain that verifies. Then a logout
while the Redis primary is down, which must hold once a replica takes over.
"""

import csv
import io
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
import vexpenses_audit_log.models  # noqa: F401  (their tables, for clean_tables)
import vexpenses_csv_import.models  # noqa: F401
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core.db import make_engine
from vexpenses_core.testing import JWT_SECRET, clean_tables, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
BIN = pathlib.Path(sys.executable).parent
PLUGINS = "csv_import audit_log"
ADMIN = ("root@multi-host.example", "admin-password-1")
ANA = ("ana@multi-host.example", "ana-password-1")

# 300 good rows and, among them, four that the import reports: two that break a
# rule, a repeat within the file, and an address already registered (Ana's).
GOOD = people(300, domain="multi-host.example")
BAD = [("Bad Address", "not-an-address", "1990-01-01"),
       ("Bad Date", "bad-date@multi-host.example", "1990-02-30"),
       ("Repeated", "pessoa7@multi-host.example", "1991-01-01"),
       ("Ana Again", ANA[0], "1992-01-01")]
ROWS = GOOD[:100] + BAD[:2] + GOOD[100:200] + BAD[2:] + GOOD[200:]
# Row numbers count the header as row 1.
NUMBERED = {index + 2: row for index, row in enumerate(ROWS)}
# Chunks run at the same time, on both workers: of the two rows that share an
# address, the one inserted first stays, whichever it is, and the other is reported.
SHARED = {number for number, row in NUMBERED.items() if row[1] == BAD[2][1]}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Host:
    """One machine: its own folder, ini file, upload folder and processes."""

    def __init__(self, name, directory, environ, port=None):
        self.name = name
        self.dir = directory
        self.dir.mkdir()
        self.port = port
        self.base = f"http://127.0.0.1:{port}" if port else None
        # The shipped production.ini, on this host's port.
        text = (ROOT / "production.ini").read_text()
        assert "listen = 0.0.0.0:6543" in text
        self.ini = self.dir / "production.ini"
        self.ini.write_text(text.replace("listen = 0.0.0.0:6543",
                                         f"listen = 127.0.0.1:{port or free_port()}"))
        self.env = {**environ, "VEXPENSES_UPLOAD_DIR": str(self.dir / "uploads")}
        self.procs = []

    def command(self, *args, env=None):
        """Run a ``vexpenses`` command here; returns its output, or fails with it."""
        done = subprocess.run([str(BIN / "vexpenses"), *args], cwd=self.dir,
                              env={**self.env, **(env or {})}, capture_output=True,
                              text=True, timeout=180, start_new_session=True)
        assert done.returncode == 0, f"{self.name}: {args}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def start(self, role, program, *args, env=None):
        """Start ``program`` in a process group of its own, its output in ``<role>.log``."""
        with open(self.dir / f"{role}.log", "w") as log:
            proc = subprocess.Popen([str(BIN / program), *args], cwd=self.dir,
                                    env={**self.env, **(env or {})}, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self):
        """Stop every process group this host started, by force after a grace period."""
        for proc in self.procs:
            # pserve stops gracefully on SIGINT; the worker supervisor on SIGTERM.
            stop = signal.SIGINT if "pserve" in proc.args[0] else signal.SIGTERM
            _signal_group(proc, stop)
        for proc in self.procs:
            try:
                proc.wait(45)
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # whatever of the group is left
            proc.wait()

    def logs(self):
        return "\n".join(f"===== host {self.name}: {path.name} =====\n{path.read_text()}"
                         for path in sorted(self.dir.glob("*.log")))


def _signal_group(proc, signum):
    try:
        os.killpg(proc.pid, signum)  # the group's id is the leader's pid
    except ProcessLookupError:
        pass


def call(method, url, token=None, body=None, content_type=None):
    """``(status, headers, body bytes)`` of one HTTP request."""
    request = urllib.request.Request(url, data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def api(method, url, token=None, data=None):
    """``(status, request id, JSON answer)`` of an API call with a JSON body."""
    body = None if data is None else json.dumps(data).encode()
    status, headers, raw = call(method, url, token, body,
                                "application/json" if body else None)
    return status, headers["X-Request-ID"], json.loads(raw)


def upload(base, token, content):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"pessoas.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    body += content + f"\r\n--{boundary}--\r\n".encode()
    status, headers, raw = call("POST", base + "/api/v1/user/upload", token, body,
                                f"multipart/form-data; boundary={boundary}")
    return status, headers["X-Request-ID"], json.loads(raw)


def answers(base):
    """Whether a web host answers (an anonymous /me is its JSON 401)."""
    try:
        return call("GET", base + "/api/v1/user/me")[0] == 401
    except OSError:
        return False


@pytest.fixture
def shared(mysql_database, redis_sentinel, s3_server):
    """What the hosts share, and nothing else: the database, Redis through its
    sentinels, and a bucket. Yields the environment every host starts from."""
    environ = {
        **{name: value for name, value in os.environ.items()
           if not name.startswith(("VEXPENSES_", "AWS_"))
           or name.startswith("VEXPENSES_TEST_")},
        **s3_server.env,
        "VEXPENSES_PLUGINS": PLUGINS,
        "VEXPENSES_JWT_SECRET": JWT_SECRET,
        "VEXPENSES_DATABASE_URL": mysql_database,
        "VEXPENSES_REDIS_URL": redis_sentinel.url,
        "VEXPENSES_STORAGE_URL": s3_server.new_bucket(),
        "VEXPENSES_BASE_URL": "http://vexpenses.multi-host.example",
        "VEXPENSES_AUDIT_LOG_CHAIN_KEY": "multi-host-chain-key-0123456789abcdef",
        # Cheap hashing: the test logs in, it does not defend against GPUs.
        "VEXPENSES_ARGON2_TIME_COST": "1",
        "VEXPENSES_ARGON2_MEMORY_COST": "8192",
        "VEXPENSES_ARGON2_PARALLELISM": "1",
        # Low enough to reach with a few tries spread over both web hosts.
        "VEXPENSES_RATELIMIT_LOGIN_ACCOUNT": "3 per 15 minutes",
        # Small chunks: even a small file is imported in parts, side by side.
        "VEXPENSES_CSV_IMPORT_CHUNK_BYTES": "3000",
        "VEXPENSES_CSV_IMPORT_BATCH_ROWS": "25",
    }
    yield environ
    # Redis and the bucket are this test's own; the database is the run's.
    engine = make_engine(mysql_database)
    try:
        clean_tables(engine)
    finally:
        engine.dispose()


@pytest.fixture
def hosts(shared, tmp_path):
    a = Host("A", tmp_path / "A", shared, free_port())
    b = Host("B", tmp_path / "B", shared, free_port())
    c = Host("C", tmp_path / "C", shared)
    try:
        c.command("migrate", str(c.ini))
        a.start("web", "pserve", str(a.ini))
        b.start("web", "pserve", str(b.ini))
        c.start("worker", "vexpenses", "worker", str(c.ini), "--workers", "2")
        for web in (a, b):
            assert wait_for(lambda web=web: answers(web.base), 90), f"{web.name} did not start"
        yield a, b, c
    finally:
        for host in (a, b, c):
            host.stop()
        for host in (a, b, c):
            print(host.logs())


def test_an_import_and_a_logout_cross_hosts_and_the_audit_log_holds_them_all(hosts, s3_server):
    a, b, c = hosts
    # The administrator, made on C while the rest goes on.
    admin = c.start("create-admin", "vexpenses", "create-admin", str(c.ini),
                    "--email", ADMIN[0], env={"VEXPENSES_ADMIN_PASSWORD": ADMIN[1]})

    # Ana registers and logs in on A.
    status, register_a, answer = api("POST", a.base + "/api/v1/user/register", data={
        "name": "Ana Souza", "email": ANA[0], "password": ANA[1],
        "password_confirmation": ANA[1], "birth_date": "1990-05-01"})
    assert status == 201, answer
    ana_id = answer["data"]["id"]
    status, login_a, answer = api("POST", a.base + "/api/v1/user/authenticate",
                                  data={"email": ANA[0], "password": ANA[1]})
    assert status == 201, answer
    token = answer["data"]["token"]

    # She uploads through A; C's workers import; B reports it.
    status, upload_a, answer = upload(a.base, token, make_csv(ROWS))
    assert status == 201, answer
    import_id, answer_name = answer["data"]["id"], answer["data"]["name"]
    status_url = f"{b.base}/api/v1/user/import-status/{import_id}"
    views_b = []

    def finished():
        status, request_id, answer = api("GET", status_url, token)
        assert status == 200, answer
        views_b.append(request_id)
        return answer["data"] if answer["data"]["status"] in (1, 2) else None

    final = wait_for(finished, 120, interval=0.2)
    assert final, f"import {import_id} did not finish"
    assert final["status"] == 2 and final["progress"] == 100, final
    assert (final["total"], final["processed"], final["imported"], final["rejected"],
            final["duplicates"]) == (len(ROWS), len(ROWS), 300, 2, 2)

    # The file went to the bucket, and no host kept a copy.
    bucket, _, prefix = a.env["VEXPENSES_STORAGE_URL"].removeprefix("s3://").partition("/")
    listed = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert [item["Key"] for item in listed.get("Contents", [])
            if item["Key"].endswith(answer_name)], listed
    assert [path for host in hosts for path in host.dir.rglob("*")
            if path.is_file() and path.suffix not in (".ini", ".log")] == []

    # The error report, through B: each reported row with its number and fields.
    status, headers, raw = call("GET", f"{status_url}/errors", token)
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    report = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert report[0][:4] == ["Row", "Nome", "E-mail", "Data de nascimento"]
    reported = {int(line[0]): tuple(line[1:4]) for line in report[1:]}
    assert len(reported) == len(report) - 1 == 4, report
    [repeat] = set(reported) & SHARED
    assert reported == {number: NUMBERED[number] for number in reported}
    assert set(reported) - {repeat} == {number for number, row in NUMBERED.items()
                                        if row in BAD and number not in SHARED}
    assert all(line[4] for line in report[1:])  # each with its reason

    assert admin.wait(180) == 0, (c.dir / "create-admin.log").read_text()
    # The imported users are there for every host (B's user list, Ana's token).
    status, _, answer = api("GET", f"{b.base}/api/v1/user?email=%40multi-host.example", token)
    assert status == 200 and answer["data"]["total"] == 1 + 1 + 300  # admin, Ana, rows

    # Login limits are counted in Redis, once for every host.
    tries = [api("POST", web.base + "/api/v1/user/authenticate",
                 data={"email": "mallory@multi-host.example", "password": "not-her-password"})
             for web in (a, b, a, b)]
    assert [status for status, _, _ in tries] == [401, 401, 401, 429], tries

    # A logout on A holds on B at once: no host keeps a revoked identity.
    status, _, _ = api("GET", b.base + "/api/v1/user/me", token)
    assert status == 200
    status, logout_a, answer = api("GET", a.base + "/api/v1/user/logout", token)
    assert status == 201, answer
    status, _, answer = api("GET", b.base + "/api/v1/user/me", token)
    assert status == 401, answer
    assert api("GET", a.base + "/api/v1/user/me", token)[0] == 401

    # The admin reads the log through B.
    status, login_b, answer = api("POST", b.base + "/api/v1/user/authenticate",
                                  data={"email": ADMIN[0], "password": ADMIN[1]})
    assert status == 201, answer
    admin_token = answer["data"]["token"]
    admin_id = answer["data"]["user"]["id"]

    def rows_of(request_id):
        """``(action, user_id)`` of every row of one request, every page of them."""
        rows, page, last = [], 1, 1
        while page <= last:
            status, _, answer = api(
                "GET", f"{b.base}/api/v1/log?request_id={request_id}&page={page}",
                admin_token)
            assert status == 200, answer
            rows += [(row["action"], row["user_id"]) for row in answer["data"]["data"]]
            page, last = page + 1, answer["data"]["last_page"]
        return rows

    # Web hosts push their records to Redis; the workers write them to the chain.
    expected = {
        register_a: [("User register", ana_id), ("Verify email", ana_id)],
        login_a: [("User login", ana_id)],
        logout_a: [("User logout", ana_id)],
        views_b[0]: [("Get import progress", ana_id)],
        login_b: [("User login", admin_id)],
    }
    for request_id, rows in expected.items():
        wait_for(lambda request_id=request_id, rows=rows:
                 sorted(rows_of(request_id)) == rows, 60)
        assert sorted(rows_of(request_id)) == rows, request_id

    # The upload's request id also finds the jobs it queued: rows with no user.
    def upload_rows():
        rows = rows_of(upload_a)
        return rows if ("Import finished", None) in rows else None

    rows = wait_for(upload_rows, 60)
    assert rows, rows_of(upload_a)
    assert ("Upload file", ana_id) in rows
    jobs = {"Import started", "Import chunk done", "Users imported", "Import finished"}
    assert {action for action, _ in rows} == {"Upload file", *jobs}, rows
    assert {user_id for action, user_id in rows if action in jobs} == {None}, rows

    # And the chain those hosts wrote together verifies.
    out = c.command("audit", "verify", str(c.ini))
    assert out.startswith("audit log OK:"), out
    seen = len(rows) + sum(len(rows) for rows in expected.values())
    assert int(out.split()[3]) >= seen, out  # "audit log OK: N rows, ..."


def test_a_logout_during_a_redis_failover_still_ends_the_token_everywhere(
        hosts, redis_sentinel):
    a, b, c = hosts
    status, _, answer = api("POST", a.base + "/api/v1/user/register", data={
        "name": "Ana Souza", "email": ANA[0], "password": ANA[1],
        "password_confirmation": ANA[1], "birth_date": "1990-05-01"})
    assert status == 201, answer
    status, _, answer = api("POST", a.base + "/api/v1/user/authenticate",
                            data={"email": ANA[0], "password": ANA[1]})
    assert status == 201, answer
    token, ana_id = answer["data"]["token"], answer["data"]["user"]["id"]
    assert api("GET", b.base + "/api/v1/user/me", token)[0] == 200  # B caches her identity
    with redis_sentinel.client(redis_sentinel.replica_port) as replica:
        assert wait_for(lambda: replica.exists(f"vexpenses:identity:{ana_id}"), 30)

    redis_sentinel.kill_primary()
    status, _, answer = api("GET", a.base + "/api/v1/user/logout", token)
    redis_sentinel.wait_for_failover(60)
    if status != 201:  # a refused logout (503) is honest too: nothing changed, so again
        assert status == 503, answer
        status = wait_for(lambda: (code := api("GET", a.base + "/api/v1/user/logout",
                                               token)[0]) != 503 and code, 30)
        assert status == 201
    # The logout said it was done: no host may take the token again. B may
    # answer 503 while its client finds the new primary.
    after = wait_for(lambda: (code := api("GET", b.base + "/api/v1/user/me", token)[0])
                     != 503 and code, 30)
    assert after == 401
