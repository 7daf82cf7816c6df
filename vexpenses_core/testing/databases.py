"""The backends each test runs on: SQLite and a fresh MariaDB database, and Redis."""

import contextlib
import uuid

import pymysql
import pytest
import redis
import sqlalchemy as sa

from vexpenses_core import make_app
from vexpenses_core.db import make_engine, metadata
from vexpenses_core.redis_client import connect

from .settings import MYSQL_URL, REDIS_URL, base_settings


def deadlock_error(statement):
    """The error pymysql raises for a MySQL deadlock (1213), raised by ``statement``."""
    return sa.exc.OperationalError(
        statement, (),
        pymysql.err.OperationalError(
            1213, "Deadlock found when trying to get lock; try restarting transaction"))


@pytest.fixture(scope="session")
def mysql_database():
    """A fresh MariaDB database for this test run, dropped afterwards."""
    try:
        with scratch_mysql_database("vexpenses_test") as url:
            yield url
    except sa.exc.OperationalError as exc:
        pytest.fail(f"MariaDB is not reachable at {MYSQL_URL}: start it (see README). {exc}")


@contextlib.contextmanager
def scratch_mysql_database(prefix):
    """A new, empty MariaDB database named ``prefix_<random>``; its URL, then dropped."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = make_engine(MYSQL_URL)
    try:
        with server.connect() as conn:
            conn.exec_driver_sql(
                f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        yield f"{MYSQL_URL}/{name}?charset=utf8mb4"
        with server.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    finally:
        server.dispose()


@pytest.fixture(scope="session")
def redis_url():
    # VEXPENSES_TEST_REDIS_URL may name sentinels too: connect as the app does.
    client = connect(REDIS_URL, 5)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: start it (see README). {exc}")
    yield REDIS_URL
    client.close()



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


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """An empty database on the current backend, for running migrations by hand."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    with scratch_mysql_database("vexpenses_mig") as url:
        yield url


def clean_tables(engine):
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            if sa.inspect(conn).has_table(table.name):
                conn.execute(table.delete())
