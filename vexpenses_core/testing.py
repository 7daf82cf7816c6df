"""Pytest fixtures for vexpenses and its plugins: each test on SQLite and real MariaDB.

Use them from a ``conftest.py``::

    from vexpenses_core.testing import *  # noqa: F403

    @pytest.fixture(scope="session")
    def vexpenses_plugins():
        return "my_plugin"


MariaDB and Redis are reached through VEXPENSES_TEST_MYSQL_URL (a server
URL without a database; default root on 127.0.0.1:3306) and
VEXPENSES_TEST_REDIS_URL (default db 15 on 127.0.0.1:6379). Each test run
creates its own MariaDB database and drops it at the end.
"""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import redis
import sqlalchemy as sa
import webtest

from vexpenses_core import make_app
from vexpenses_core.db import make_engine, metadata
from vexpenses_core.settings import environ_for

MYSQL_URL = os.environ.get("VEXPENSES_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("VEXPENSES_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


@pytest.fixture(scope="session")
def mysql_database():
    """A fresh MariaDB database for this test run, dropped afterwards."""
    name = f"vexpenses_test_{uuid.uuid4().hex[:10]}"
    server = make_engine(MYSQL_URL)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_URL}: start it (see README). {exc}")
    yield f"{MYSQL_URL}/{name}?charset=utf8mb4"
    with server.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    server.dispose()


@pytest.fixture(scope="session")
def redis_url():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: start it (see README). {exc}")
    yield REDIS_URL
    client.close()


@pytest.fixture(scope="session")
def vexpenses_plugins():
    """The plugins enabled in tests (space-separated); override in a conftest."""
    return ""


def base_settings(database_url, plugins="", **overrides):
    run_id = uuid.uuid4().hex
    settings = {
        "vexpenses.env": "testing",
        "vexpenses.database_url": database_url,
        "vexpenses.redis_url": "",
        "vexpenses.plugins": plugins,
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.base_url": "http://localhost",
        # Unique per app, so test runs and tests can share one Redis.
        "vexpenses.redis_prefix": f"test:{run_id}:",
        "vexpenses.tasks.queue": f"test:{run_id}:tasks",
        "vexpenses.tasks.redelivery_seconds": "2",
        # Cheap hashing: the tests hash many passwords, not defend against GPUs.
        "vexpenses.argon2.time_cost": "1",
        "vexpenses.argon2.memory_cost": "8192",
        "vexpenses.argon2.parallelism": "1",
        # Tests register many users from one address; the limit's own tests lower it.
        "vexpenses.ratelimit.register_ip": "10000 per minute",
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session", params=["sqlite", "mysql"])
def database_url(request, tmp_path_factory):
    """A database migrated for every installed plugin, once per backend per run.

    Tests of several distributions share it in one run; each test app then
    enables only the plugins it tests.
    """
    from vexpenses_core.plugins import installed_plugins

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite'}"
    else:
        url = request.getfixturevalue("mysql_database")
    everything = " ".join(installed_plugins())
    app = make_app(base_settings(url, everything, **{"vexpenses.auto_migrate": "true"}))
    app.registry.queue.close()
    app.registry.dbengine.dispose()
    return url


def clean_tables(engine):
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if sa.inspect(conn).has_table(table.name):
                conn.execute(table.delete())


@pytest.fixture
def make_testapp(database_url, vexpenses_plugins, environ_clean):
    """Build TestApps on the current backend; settings may be overridden."""
    made = []

    def make(**overrides):
        wsgi = make_app(base_settings(database_url, vexpenses_plugins, **overrides))
        made.append(wsgi.registry)
        return webtest.TestApp(wsgi, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    yield make
    for registry in made:
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()
        if registry.settings["vexpenses.redis_url"]:  # leave a shared Redis as we found it
            prefix = registry.settings["vexpenses.redis_prefix"]
            for key in registry.redis.scan_iter(match=prefix + "*", count=1000):
                registry.redis.delete(key)
        registry.redis.close()


@pytest.fixture
def testapp(make_testapp):
    return make_testapp()


@pytest.fixture
def environ_clean(monkeypatch):
    """No VEXPENSES_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("VEXPENSES_") and not name.startswith("VEXPENSES_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def dbsession(testapp):
    session = testapp.app.registry.dbsession_factory()
    yield session
    session.close()


def make_user(registry, *, email="ana@example.com", is_admin=False, name="Ana Souza",
              password=None):
    """Insert a user with a login session directly; return (id, access token)."""
    from pyramid.scripting import prepare

    from vexpenses_core.accounts.services import AuthService
    from vexpenses_core.models import User

    env = prepare(registry=registry)
    request = env["request"]
    try:
        with request.tm:
            password_hash = registry.password_hasher.hash(password) if password else None
            user = User(name=name, email=email, is_admin=is_admin, password_hash=password_hash)
            request.dbsession.add(user)
            request.dbsession.flush()
            _, token, _, _ = AuthService(request).start_session(user)
            user_id = user.id
    finally:
        env["closer"]()
    return user_id, token


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
level = INFO
handlers = console

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(process)d][%(request_id)s] %(message)s
"""


def write_ini(directory):
    """An ini file for subprocesses (workers, commands); settings come from VEXPENSES_*."""
    path = directory / "testing.ini"
    path.write_text(TESTING_INI)
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


CHROMIUM = os.environ.get("VEXPENSES_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright (no browser download)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            # The machine's closed network refuses Chromium's background calls.
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"],
        )
        yield chromium
        chromium.close()


@contextlib.contextmanager
def live_server(make):
    """Serve a test app over real HTTP on a free port, for a browser.

    ``make(base_url)`` builds the TestApp, so that its ``vexpenses.base_url``
    (used in mailed links) names the server. Yields the TestApp with a
    ``base_url`` attribute.
    """
    from waitress.server import create_server

    holder = {}
    server = create_server(lambda environ, start: holder["app"](environ, start),
                           host="127.0.0.1", port=0, threads=4)
    base_url = f"http://127.0.0.1:{server.effective_port}"
    testapp = make(base_url)
    holder["app"] = testapp.app
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    testapp.base_url = base_url
    try:
        yield testapp
    finally:
        server.close()
        thread.join(5)


#: Host and X-Forwarded-Host values that must never reach a page, the OpenAPI
#: document or a paginator link. Each holds "evil", so one check finds them all.
HOSTILE_HOSTS = [
    "evil.example",
    "evil.example:8443",
    'evil.example"><script>alert(1)</script>',
    "evil.example\r\nSet-Cookie: stolen=1",
    "localhost@evil.example",
    "localhost/evil.example?x=",
    "\u00e9vil-evil.\u00f1xample".encode().decode("latin-1"),  # UTF-8 as WSGI carries it
    "evil.example\x00",
]


def hostile_host_environ(host):
    """The environ of a request whose Host and every forwarded header are ``host``."""
    return {
        "HTTP_HOST": host,
        "HTTP_X_FORWARDED_HOST": host,
        "HTTP_X_FORWARDED_PROTO": "javascript",
        "HTTP_FORWARDED": f'host="{host}";proto=javascript',
    }


def assert_not_reflected(response, marker="evil"):
    """Neither the body nor a header of ``response`` carries ``marker``."""
    assert marker not in response.body.decode("utf-8", "replace").lower()
    for name, value in response.headerlist:
        assert marker not in value.lower(), (name, value)
