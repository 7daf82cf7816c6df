"""Database: one engine per process, a session per request joined to its transaction.

The same code runs on SQLite (the embedded default) and MySQL/MariaDB.
"""

import datetime
import os

import transaction
import zope.sqlalchemy
import zope.sqlalchemy.datamanager
from pyramid_retry import mark_error_retryable
from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from .transactions import (
    ATTEMPTS,
    RETRYABLE_MYSQL_ERRORS,
    lazy_transaction_manager,
    mysql_error_code,
)

# Stable constraint names, so that Alembic migrations mean the same thing on
# SQLite and MySQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    """Declarative base for the core and every plugin."""

    metadata = metadata


class UTCDateTime(TypeDecorator):
    """A timestamp stored as naive UTC, handed out as an aware UTC datetime.

    SQLite has no time zones and MySQL's DATETIME drops them, so the one
    convention both agree on is naive UTC in the column.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "mysql":  # keep microseconds; plain DATETIME drops them
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is not None:
            value = value.replace(tzinfo=datetime.UTC)
        return value


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def make_engine(url, **kwargs):
    """Create an engine with the settings each backend needs."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One shared connection, or every connection sees its own empty db.
            kwargs.setdefault("poolclass", StaticPool)
        else:
            os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        # pysqlite's own transaction handling breaks SAVEPOINT; do it ourselves.
        # IMMEDIATE takes the write lock up front: a deferred transaction that
        # reads and then writes fails at once with "database is locked" when
        # another thread wrote meanwhile, whatever the busy timeout.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if backend == "mysql":
        if "charset" not in parsed.query:
            parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("pool_recycle", 3600)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "handle_error", _mark_mysql_retryable)
        return engine
    return create_engine(parsed, **kwargs)


def _sqlite_on_connect(dbapi_connection, connection_record):
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    # WAL lets readers go on while a writer writes; the busy timeout makes a
    # second writer (a web thread and an in-process job) wait instead of fail.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _mark_mysql_retryable(context):
    code = mysql_error_code(context.original_exception)
    if code in RETRYABLE_MYSQL_ERRORS and context.sqlalchemy_exception is not None:
        mark_error_retryable(context.sqlalchemy_exception)


def get_session_factory(engine):
    return sessionmaker(bind=engine, expire_on_commit=False)


def get_tm_session(session_factory, transaction_manager, request=None):
    """Return a session joined to ``transaction_manager``.

    Commit and abort go through the transaction manager, never the session.
    """
    dbsession = session_factory(info={"request": request})
    # "changed" from the start: a plain SQL statement (a bulk INSERT, an
    # UPDATE through session.execute) is committed like ORM changes are,
    # instead of silently rolled back.
    zope.sqlalchemy.register(
        dbsession,
        transaction_manager=transaction_manager,
        initial_state=zope.sqlalchemy.datamanager.STATUS_CHANGED,
    )
    return dbsession


def includeme(config):
    """Wire pyramid_tm, pyramid_retry and ``request.dbsession``.

    ``registry.dbengine`` and ``registry.dbsession_factory`` are shared by the
    web process and tasks.  Tests may put their own session in the WSGI
    environ as ``app.dbsession``.
    """
    settings = config.get_settings()
    # The function itself: pyramid_tm would resolve a dotted name on every request.
    settings["tm.manager_hook"] = lazy_transaction_manager
    settings.setdefault("retry.attempts", ATTEMPTS)  # as tasks and the audit chain
    # A retry needs a copy of the body: none for a body that will get a 413.
    settings.setdefault("retry.activate_hook", "vexpenses_core.bodylimits.retry_attempts")
    config.include("pyramid_tm")
    config.include("pyramid_retry")

    registry = config.registry
    if getattr(registry, "dbengine", None) is None:
        registry.dbengine = make_engine(settings["vexpenses.database_url"])
        registry.dbsession_factory = get_session_factory(registry.dbengine)

    def dbsession(request):
        session = request.environ.get("app.dbsession")
        if session is None:
            session = get_tm_session(
                request.registry.dbsession_factory, request.tm, request=request
            )
        # Objects read before the session existed (a cached identity) join it now.
        for obj in request.__dict__.pop("vexpenses.attach", ()):
            session.add(obj)
        return session

    config.add_request_method(dbsession, reify=True)


def new_transaction_manager():
    return transaction.TransactionManager(explicit=True)
