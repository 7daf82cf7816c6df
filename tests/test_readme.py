"""The README's commands, extracted from the Markdown and run as written.

- "Run on MariaDB and Redis": the production path, from creating the database to a
  user registered over HTTP whose welcome e-mail a real worker sent through Redis.
- "Run it": `make run`, whose documentation page must answer.
- "Test it": `make test`, the Makefile's target that CI runs.
"""

import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import pytest
import redis
import sqlalchemy as sa

from vexpenses_core.testing import MYSQL_URL, REDIS_URL, wait_for, worker_pids

REPO = pathlib.Path(__file__).resolve().parent.parent
README = REPO / "README.md"

# What start-up needs from the environment, or a local try cannot do without.
REQUIRED = (
    "VEXPENSES_JWT_SECRET",
    "VEXPENSES_DATABASE_URL",
    "VEXPENSES_REDIS_URL",
    "VEXPENSES_SMTP_URL",
    "VEXPENSES_MAIL_FROM",
    "VEXPENSES_BASE_URL",
    "VEXPENSES_UPLOAD_DIR",
)


def section(text, title):
    """The Markdown from the ``## title`` heading to the next ``## ``."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"README.md has no section '## {title}'"
    return match.group(1)


def sh_blocks(markdown):
    return re.findall(r"^```sh\n(.*?)^```", markdown, re.M | re.S)


def readme_section(title):
    return section(README.read_text(), title)


# -- the production path ---------------------------------------------------------


class ProductionPath:
    """The README's production block, split into the kinds of line it must have."""

    KINDS = {
        (".venv/bin/vexpenses", "check"): "check",
        (".venv/bin/vexpenses", "migrate"): "migrate",
        (".venv/bin/pserve", "production.ini"): "pserve",
        (".venv/bin/vexpenses", "worker"): "worker",
    }

    def __init__(self, block):
        self.create_database = None
        self.exports = {}  # name -> the export line
        self.commands = {}  # "migrate", "pserve", "worker" -> argv
        for line in block.splitlines():
            if not line.strip():
                continue
            if line.startswith("mysql "):
                self.create_database = line
            elif match := re.match(r"export (VEXPENSES_[A-Z_]+)=", line):
                self.exports[match.group(1)] = line
            else:
                argv = shlex.split(line, comments=True)
                kind = self.KINDS.get(tuple(argv[:2]))
                assert kind, f"a line of the README's production block, not known here: {line!r}"
                self.commands[kind] = argv
        assert self.create_database, "the README's production block no longer creates the database"
        missing = [name for name in REQUIRED if name not in self.exports]
        assert not missing, f"the README's production block no longer sets {', '.join(missing)}"
        assert list(self.commands) == ["check", "migrate", "pserve", "worker"], self.commands
        assert self.commands["check"] == [".venv/bin/vexpenses", "check", "production.ini"]
        assert self.commands["migrate"] == [".venv/bin/vexpenses", "migrate", "production.ini"]
        assert self.commands["worker"][2:4] == ["production.ini", "--workers"]

    def replace(self, name, old, new):
        """Replace ``old`` by ``new`` in the export of ``name``; ``old`` must be there."""
        line = self.exports[name]
        assert line.count(old) == 1, f"the README's {name} no longer holds {old!r}: {line!r}"
        self.exports[name] = line.replace(old, new)


def production_path():
    [block] = sh_blocks(readme_section("Run on MariaDB and Redis"))
    return ProductionPath(block)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method, url, body=None, token=None):
    """(status, decoded JSON) of one request."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def minimal_environ():
    """What a shell of a new user has, without the test run's own VEXPENSES_* variables."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {name: os.environ[name] for name in keep if name in os.environ}


def stop(proc, sig, timeout=45):
    """Stop gracefully; kill only if that did not work. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            return None
    return proc.returncode


@pytest.fixture
def production_plugins():
    """production.ini enables the three bundled plugins: they must be installed."""
    from vexpenses_core.plugins import installed_plugins

    missing = {"csv_import", "audit_log", "mailer"} - set(installed_plugins())
    if missing:
        pytest.skip(f"production.ini needs the plugins {', '.join(sorted(missing))}")
    from vexpenses_mailer.testing import SMTPSink

    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def scratch(tmp_path):
    """A copy of the checkout's layout for the README's relative paths: ``.venv``
    (this test run's environment) and ``production.ini``."""
    (tmp_path / ".venv").symlink_to(sys.prefix)
    return tmp_path


def test_the_readme_production_path_runs(production_plugins, scratch):
    sink = production_plugins
    path = production_path()
    database = f"vexpenses_readme_{uuid.uuid4().hex[:10]}"
    port = free_port()
    run_id = uuid.uuid4().hex
    server = sa.engine.make_url(MYSQL_URL)

    # What must differ in a test, and only that: the database name, the Redis
    # server and a prefix of its own, the SMTP server (our sink) and the port.
    path.replace("VEXPENSES_DATABASE_URL", "root@127.0.0.1:3306/vexpenses?",
                 f"{server.render_as_string(hide_password=False).split('://', 1)[1]}"
                 f"/{database}?")
    path.replace("VEXPENSES_REDIS_URL", "redis://127.0.0.1:6379/0", REDIS_URL)
    path.replace("VEXPENSES_SMTP_URL", "smtp://127.0.0.1:8025", f"smtp://127.0.0.1:{sink.port}")
    path.replace("VEXPENSES_BASE_URL", "http://localhost:6543", f"http://127.0.0.1:{port}")
    ini = (REPO / "production.ini").read_text()
    assert ini.count("\nlisten = 0.0.0.0:6543\n") == 1, "production.ini no longer listens on 6543"
    (scratch / "production.ini").write_text(
        ini.replace("\nlisten = 0.0.0.0:6543\n", f"\nlisten = 127.0.0.1:{port}\n"))
    create = path.create_database
    for old, new in ((" vexpenses ", f" {database} "),
                     ("-uroot -h127.0.0.1", f"-u{server.username} -h{server.host}"
                                            f" -P{server.port or 3306}")):
        assert create.count(old) == 1, f"the README's database line changed: {create!r}"
        create = create.replace(old, new)
    workers = path.commands["worker"][:4] + ["2"]  # not 8 processes on a CI machine

    # The exports, run by a shell as a user would paste them.
    shell = subprocess.run(
        ["bash", "-euc", "\n".join(path.exports.values()) + "\nenv -0"],
        cwd=scratch, env=minimal_environ(), capture_output=True, text=True, check=True)
    env = dict(item.split("=", 1) for item in shell.stdout.split("\0") if item)
    env["VEXPENSES_REDIS_PREFIX"] = f"test:{run_id}:"
    env["VEXPENSES_TASK_QUEUE"] = f"test:{run_id}:tasks"
    assert pathlib.Path(env["VEXPENSES_UPLOAD_DIR"]).is_relative_to(scratch)

    if not shutil.which("mysql"):
        pytest.skip("the README creates the database with the mysql client, not installed here")
    logs = {}
    procs = {}
    engine = sa.create_engine(MYSQL_URL)
    try:
        subprocess.run(["bash", "-euc", create], cwd=scratch, check=True,
                       env={**env, "MYSQL_PWD": server.password or ""})
        # Every setting is right: the one problem is the migrations to apply.
        check = subprocess.run(path.commands["check"], cwd=scratch, env=env,
                               capture_output=True, text=True, timeout=120)
        problems = [line for line in check.stdout.splitlines() if line.startswith("problem:")]
        assert check.returncode == 1 and len(problems) == 1, check.stdout + check.stderr
        assert "is not migrated" in problems[0], problems
        migrate = subprocess.run(path.commands["migrate"], cwd=scratch, env=env,
                                 capture_output=True, text=True, timeout=120)
        assert migrate.returncode == 0, migrate.stderr
        assert migrate.stdout.startswith("applied "), migrate.stdout
        shown = re.findall(r"^```text\n(.*?)^```", section(
            (REPO / "docs" / "quickstart.md").read_text(), "Run against MariaDB and Redis"),
            re.M | re.S)
        assert migrate.stdout in shown, "docs/quickstart.md does not show what migrate says"
        for name, argv in (("pserve", path.commands["pserve"]), ("worker", workers)):
            logs[name] = open(scratch / f"{name}.log", "w")
            procs[name] = subprocess.Popen(argv, cwd=scratch, env=env, stdout=logs[name],
                                           stderr=subprocess.STDOUT)
        base = env["VEXPENSES_BASE_URL"]
        assert wait_for(lambda: answers(f"{base}/api/v1/openapi.json")
                        or procs["pserve"].poll() is not None, 60)
        assert procs["pserve"].poll() is None, "pserve stopped"
        assert wait_for(lambda: len(worker_pids(procs["worker"].pid)) == 2
                        or procs["worker"].poll() is not None, 60)
        assert procs["worker"].poll() is None, "the workers stopped"

        user = {"name": "Ana Souza", "email": "ana@example.com", "password": "a good password",
                "password_confirmation": "a good password", "birth_date": "1990-01-01"}
        status, body = http("POST", f"{base}/api/v1/user/register", user)
        assert status == 201, body
        status, body = http("POST", f"{base}/api/v1/user/authenticate",
                            {"email": user["email"], "password": user["password"]})
        assert status == 201, body
        status, body = http("GET", f"{base}/api/v1/user/me", token=body["data"]["token"])
        assert (status, body["data"]["email"]) == (200, "ana@example.com"), body

        # The web server only queued them: a worker took them from Redis and sent them.
        # Registration mails a welcome and the link that verifies the address.
        assert sink.wait_for(2, timeout=30), "no e-mail arrived: did a worker run the tasks?"
        assert len(sink.messages) == 2, [m["Subject"] for m in sink.messages]
        for message in sink.messages:
            assert message.rcpt_tos == ["ana@example.com"]
            assert message["From"] == env["VEXPENSES_MAIL_FROM"]
            assert base in message.text
        assert any(f"{base}/verify-email?token=" in m.text for m in sink.messages)

        assert stop(procs["worker"], signal.SIGTERM) == 0, "the workers did not stop cleanly"
        # SIGINT: waitress finishes the requests in flight (docs/deployment.md).
        assert stop(procs["pserve"], signal.SIGINT) == 0, "pserve did not stop cleanly"
    finally:
        for name, sig in (("worker", signal.SIGTERM), ("pserve", signal.SIGINT)):
            if name in procs:
                stop(procs[name], sig)
            if name in logs:
                logs[name].close()
                print(f"--- {name}\n{(scratch / f'{name}.log').read_text()}")
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {database}")
        engine.dispose()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(f"test:{run_id}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def command_lines(markdown):
    """The commands of a section's sh blocks, without their trailing comments."""
    return [re.sub(r"\s+# .*$", "", line) for block in sh_blocks(markdown)
            for line in block.splitlines() if line.strip()]


def test_the_quickstart_and_deployment_say_what_the_readme_says():
    readme = command_lines(readme_section("Run on MariaDB and Redis"))
    quickstart = section((REPO / "docs" / "quickstart.md").read_text(),
                         "Run against MariaDB and Redis")
    assert command_lines(quickstart) == readme, "the quickstart's steps differ from the README"
    deployment = (REPO / "docs" / "deployment.md").read_text()
    secrets = section(deployment, "Secrets and environment")
    for name in REQUIRED:
        assert f"`{name}`" in secrets, f"docs/deployment.md does not name {name}"
    for argv in production_path().commands.values():
        command = shlex.join([pathlib.Path(argv[0]).name, *argv[1:]])
        assert command in deployment, f"docs/deployment.md does not show {command!r}"
    # Every program of the supervisord example gets every variable.
    supervisord = (REPO / "examples" / "supervisord.conf").read_text()
    programs = re.findall(r"^environment =\n((?:    .*\n)+)", supervisord, re.M)
    assert len(programs) == 2
    for environment in programs:
        names = re.findall(r"^    (VEXPENSES_[A-Z_]+)=", environment, re.M)
        assert sorted(names) == sorted(REQUIRED), names


# -- the README's two commands ---------------------------------------------------


def first_command(title):
    """The section's first sh block: the command the README gives first."""
    return sh_blocks(readme_section(title))[0].strip()


def files_under(folder):
    """Each file and folder under ``folder``, with its modification time."""
    return {(str(path), path.stat().st_mtime_ns) for path in folder.rglob("*")}


def test_make_run_serves_the_page_the_readme_names(tmp_path):
    assert first_command("Run it") == "make run"
    match = re.search(r"Then open (http://localhost:(\d+)/\S+?)\.?\s", readme_section("Run it"))
    assert match, "the README no longer says which page to open after make run"
    url, port = match.group(1), int(match.group(2))
    if pathlib.Path(sys.prefix).resolve() != (REPO / ".venv").resolve():
        pytest.skip(f"make run uses {REPO / '.venv'}; these tests run from {sys.prefix}")
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            pytest.skip(f"port {port} is taken by another process; make run serves there")

    # The embedded default writes its database, uploads and mail next to
    # development.ini: here, they go to tmp_path instead.
    env = {name: value for name, value in os.environ.items()
           if name not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(VEXPENSES_DATABASE_URL=f"sqlite:///{tmp_path}/run.sqlite",
               VEXPENSES_UPLOAD_DIR=str(tmp_path / "uploads"),
               VEXPENSES_MAILER_FILE_DIR=str(tmp_path / "mail"))
    before = files_under(REPO / "var")
    with open(tmp_path / "make.log", "w") as log:
        # A session of its own, so that SIGINT reaches make and pserve, as Ctrl-C does.
        make = subprocess.Popen(["make", "run"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            assert wait_for(lambda: answers(url) or make.poll() is not None, 120), \
                f"{url} did not answer"
            assert make.poll() is None, "make run stopped"
            with urllib.request.urlopen(url, timeout=10) as page:
                assert page.headers.get_content_type() == "text/html"
                assert b"openapi.json" in page.read()
        finally:
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGINT)
                try:
                    make.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(make.pid, signal.SIGKILL)
                    make.wait()
            print((tmp_path / "make.log").read_text())
    assert (tmp_path / "run.sqlite").exists()
    assert files_under(REPO / "var") == before, "make run left files in the checkout's var/"
    assert not answers(url), "the server still runs"


def test_make_test_is_the_makefile_target_ci_runs():
    assert first_command("Test it") == "make test"
    assert re.search(r"^test:", (REPO / "Makefile").read_text(), re.M)
    assert re.search(r"^step test make test$", (REPO / ".ci" / "run").read_text(), re.M)
