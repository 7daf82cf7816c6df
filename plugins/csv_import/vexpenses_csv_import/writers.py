"""Inserting a batch of new users: one statement per batch, never an overwrite.

``user_writer(db)`` picks the writer for the session's database:

- :class:`LoadDataUserWriter` streams the batch from memory with
  ``LOAD DATA LOCAL INFILE``, when the session runs on a connection from
  :func:`infile_engine` (MariaDB/MySQL with ``local_infile`` ON). The server
  then parses tab-separated text instead of SQL: about a third less of its
  CPU per row than a multi-row INSERT.
- :class:`MySQLUserWriter` writes the SQL text itself on the session's own
  PyMySQL connection, which is several times faster than SQLAlchemy's
  executemany (whose per-value escaping and RETURNING parsing dominate a
  batch). Strings are escaped exactly as the connection's ``escape()`` does,
  following the server's NO_BACKSLASH_ESCAPES mode.
- :class:`SQLAlchemyUserWriter` works everywhere (SQLite, the embedded default).

Both skip e-mails that are taken, even by a transaction that commits while
the batch runs (``INSERT IGNORE`` / ``INSERT OR IGNORE``), and report exactly
which rows they inserted.
"""

import datetime
import logging
import operator
import re
import threading

from pymysql import connections as pymysql_connections
from pymysql import err as pymysql_err
from pymysql.constants.CR import CR_COMMANDS_OUT_OF_SYNC
from pymysql.constants.SERVER_STATUS import SERVER_STATUS_NO_BACKSLASH_ESCAPES
from pyramid_retry import mark_error_retryable
from sqlalchemy import event, insert

from vexpenses_core.db import RETRYABLE_MYSQL_ERRORS, make_engine, utcnow
from vexpenses_core.models import User
from vexpenses_core.transactions import mysql_error_code

# MySQL string literal escapes, as PyMySQL's escape_string writes them.
BACKSLASH_ESCAPES = str.maketrans({"\0": "\\0", "\\": "\\\\", "\n": "\\n", "\r": "\\r",
                                   "\x1a": "\\Z", '"': '\\"', "'": "\\'"})
QUOTES_ONLY = str.maketrans({"'": "''"})
NEEDS_ESCAPE = re.compile(r"['\"\\\x00\x1a\n\r]")
COLUMNS = "name, email, password_hash, birth_date, is_admin, created_at, updated_at"


log = logging.getLogger(__name__)

# LOAD DATA's default format (fields end with a tab, lines with a newline,
# backslash escapes), which does not depend on the server's sql_mode.
INFILE_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                                "\0": "\\0"})
INFILE_NEEDS_ESCAPE = re.compile(r"[\\\t\n\r\x00]")
INFILE_NAME = "csv_import_batch"
# Sent in packets of this size; a server accepts them whatever its max_allowed_packet.
INFILE_PACKET = 16384
# The errors that say LOAD DATA LOCAL is off, on the server (its local_infile)
# or for a client that did not ask for it: ER_NOT_ALLOWED_COMMAND (older
# servers), MySQL 8's ER_CLIENT_LOCAL_FILES_DISABLED, and MariaDB 10.6+'s
# ER_LOAD_INFILE_CAPABILITY_DISABLED.
INFILE_REFUSED = {1148, 3948, 4166}
ER_NO_SUCH_TABLE = 1146


def user_writer(db):
    if db.get_bind().dialect.name != "mysql":
        return SQLAlchemyUserWriter(db)
    connection = db.connection()
    if isinstance(connection.connection.dbapi_connection, InfileConnection):
        writer = LoadDataUserWriter(db)
        if writer.consecutive:
            return writer
    return MySQLUserWriter(db)


class UserWriter:
    def insert_columns(self, names, emails, dates):
        """Insert a batch given as columns, ``dates`` as ISO text; as :meth:`insert`.

        The e-mails are distinct. Sorted by e-mail, so that parallel batches
        take their index locks in one order.
        """
        rows = sorted(zip(names, emails, map(datetime.date.fromisoformat, dates), strict=True),
                      key=operator.itemgetter(1))
        return self.insert(rows)


class SQLAlchemyUserWriter(UserWriter):
    def __init__(self, db):
        self.db = db

    def insert(self, rows, now=None):
        """Insert ``(name, email, birth_date)`` rows; return ``{email: id}`` of those inserted."""
        if not rows:
            return {}
        now = now or utcnow()
        table = User.__table__
        statement = insert(table)
        dialect = self.db.get_bind().dialect.name
        if dialect == "sqlite":
            statement = statement.prefix_with("OR IGNORE")
        elif dialect == "mysql":
            statement = statement.prefix_with("IGNORE")
        statement = statement.returning(table.c.id, table.c.email)
        result = self.db.execute(statement, [
            {"name": name, "email": email, "password_hash": None, "birth_date": birth_date,
             "is_admin": False, "created_at": now, "updated_at": now}
            for name, email, birth_date in rows
        ])
        return {email: user_id for user_id, email in result}


class MySQLUserWriter(UserWriter):
    """MariaDB/MySQL: the statements written out on the session's PyMySQL connection.

    The new ids come from ``LAST_INSERT_ID()`` when the server hands a
    multi-row INSERT consecutive ids (auto-increment lock mode 0 or 1, the
    MariaDB default); else from ``RETURNING`` (MariaDB 10.5+); else, on MySQL,
    from a SELECT of the e-mails just inserted.
    """

    def __init__(self, db):
        connection = db.connection()  # joined to the transaction; committed by it
        self.raw = connection.connection.dbapi_connection
        info = connection.connection.info
        if "csv_import_server" not in info:
            info["csv_import_server"] = self._server_features()
        self.consecutive, self.returning = info["csv_import_server"]
        # What the connection's own escape() does.
        no_backslash = self.raw.server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES
        table = QUOTES_ONLY if no_backslash else BACKSLASH_ESCAPES
        special = NEEDS_ESCAPE.search

        def escape(value):  # most values need no escaping: look before translating
            return value.translate(table) if special(value) else value

        self.escape = escape

    def _run(self, sql):
        cursor = self.raw.cursor()
        try:
            cursor.execute(sql)  # no arguments: the text is final, no %-formatting
        except Exception as exc:
            if mysql_error_code(exc) in RETRYABLE_MYSQL_ERRORS:
                mark_error_retryable(exc)  # deadlock or lock wait: retry the batch
            raise
        return cursor

    def _server_features(self):
        """(consecutive ids for a multi-row INSERT, INSERT ... RETURNING supported)."""
        cursor = self._run(
            "SELECT @@innodb_autoinc_lock_mode, @@auto_increment_increment, VERSION()")
        mode, increment, version = cursor.fetchone()
        numbers = re.match(r"(\d+)\.(\d+)", version)
        returning = "mariadb" in version.lower() and numbers is not None and (
            int(numbers[1]), int(numbers[2])) >= (10, 5)
        return int(mode) in (0, 1) and int(increment) == 1, returning

    def _values(self, rows, now):
        escape = self.escape
        tail = f",0,{now},{now})"
        return ",".join([f"('{escape(name)}','{escape(email)}',NULL,'{birth_date}'{tail}"
                         for name, email, birth_date in rows])

    def insert(self, rows, now=None):
        if not rows:
            return {}
        now = (now or utcnow()).astimezone(datetime.UTC).strftime("'%Y-%m-%d %H:%M:%S.%f'")
        statement = f"INSERT IGNORE INTO users ({COLUMNS}) VALUES {self._values(rows, now)}"
        # Usually every row goes in. If one was skipped, undo and find out which.
        self._run("SAVEPOINT csv_import_batch")
        cursor = self._run(statement)
        if cursor.rowcount == len(rows):
            self._run("RELEASE SAVEPOINT csv_import_batch")
            if self.consecutive:  # LAST_INSERT_ID() onwards, in order
                return {email: cursor.lastrowid + k for k, (_, email, _) in enumerate(rows)}
            return self._ids([email for _, email, _ in rows])
        self._run("ROLLBACK TO SAVEPOINT csv_import_batch")
        if self.returning:
            cursor = self._run(statement + " RETURNING id, email")
            return {email: user_id for user_id, email in cursor.fetchall()}
        return self._insert_one_by_one(rows, now)

    def _ids(self, emails):
        """Ids of e-mails this transaction has just inserted (no other can hold them)."""
        quoted = ",".join(f"'{self.escape(email)}'" for email in emails)
        cursor = self._run(f"SELECT id, email FROM users WHERE email IN ({quoted})")
        return {email: user_id for user_id, email in cursor.fetchall()}

    def _insert_one_by_one(self, rows, now):
        """No RETURNING (MySQL): a batch with a duplicate is inserted row by row."""
        inserted = {}
        for row in rows:
            cursor = self._run(
                f"INSERT IGNORE INTO users ({COLUMNS}) VALUES {self._values([row], now)}")
            if cursor.rowcount == 1:
                inserted[row[1]] = cursor.lastrowid
        return inserted


class LoadDataUserWriter(MySQLUserWriter):
    """``LOAD DATA LOCAL INFILE ... IGNORE`` of the batch, streamed from memory.

    The ids come from ``LAST_INSERT_ID()``: with auto-increment lock mode 0
    or 1 a LOAD DATA holds the table's AUTO-INC lock to its end, so its rows
    get increasing ids in the order sent, within ``len(rows)`` of the first,
    every other statement's being older or newer. When every row went in,
    they are consecutive. When the unique index skipped some (taken
    e-mails), the rows inserted are looked up: the batch's e-mails with an id
    in that range. Only such batches pay that SELECT. ``user_writer`` uses
    this writer only in modes 0 and 1.
    """

    def insert(self, rows, now=None):
        if not rows:
            return {}
        escape = self.infile_escape
        data = "".join([f"{escape(name)}\t{escape(email)}\t{birth_date}\n"
                        for name, email, birth_date in rows]).encode()
        inserted = self._load(data, len(rows), "name, email, birth_date", now)
        return self._loaded_ids(inserted, [email for _, email, _ in rows])

    def insert_columns(self, names, emails, dates):
        """:meth:`insert` without a Python step per row: the text is joined in C."""
        special = INFILE_NEEDS_ESCAPE.search
        if special("".join(names)) or special("".join(emails)) or not names:
            return super().insert_columns(names, emails, dates)
        # In e-mail order, sorting indexes: no tuple per row.
        order = sorted(range(len(emails)), key=emails.__getitem__)
        names, emails, dates = (list(map(column.__getitem__, order))
                                for column in (names, emails, dates))
        rows = zip(emails, names, dates, strict=True)
        data = ("\n".join(map("\t".join, rows)) + "\n").encode()
        inserted = self._load(data, len(emails), "email, name, birth_date")
        return self._loaded_ids(inserted, emails)

    def _load(self, data, count, columns, now=None):
        """LOAD DATA of ``count`` rows of text; returns how many went in."""
        now = (now or utcnow()).astimezone(datetime.UTC).strftime("'%Y-%m-%d %H:%M:%S.%f'")
        self.raw.infile_data = data
        try:
            cursor = self._run(
                f"LOAD DATA LOCAL INFILE '{INFILE_NAME}' IGNORE INTO TABLE users "
                f"CHARACTER SET utf8mb4 ({columns}) "
                f"SET password_hash = NULL, is_admin = 0, created_at = {now}, "
                f"updated_at = {now}")
        finally:
            self.raw.infile_data = None
        inserted = cursor.rowcount
        # IGNORE makes any bad value a warning: only a skipped duplicate may be one.
        warnings = self.raw.infile_warnings
        if warnings != count - inserted:
            raise RuntimeError(f"LOAD DATA of {count} rows inserted {inserted} with "
                               f"{warnings} warnings: a value was changed, not only skipped")
        return inserted

    def _loaded_ids(self, inserted, emails):
        """``{email: id}`` of the ``inserted`` rows of the last LOAD DATA, sent in this order."""
        if not inserted:
            return {}
        first = self._run("SELECT LAST_INSERT_ID()").fetchone()[0]
        if inserted == len(emails):
            return dict(zip(emails, range(first, first + len(emails)), strict=True))
        quoted = ",".join([f"'{self.escape(email)}'" for email in emails])
        cursor = self._run(f"SELECT id, email FROM users WHERE id >= {int(first)} AND "
                           f"id < {int(first) + len(emails)} AND email IN ({quoted})")
        return {email: user_id for user_id, email in cursor.fetchall()}

    @staticmethod
    def infile_escape(value):
        return value.translate(INFILE_ESCAPES) if INFILE_NEEDS_ESCAPE.search(value) else value


class _InfileResult(pymysql_connections.MySQLResult):
    """A result whose LOAD DATA LOCAL is fed from the connection's ``infile_data``.

    PyMySQL's own would open the file the server names, whatever it is: a
    server could read any file of the worker's. This one sends only the
    batch it was given, for the name the writer used, and nothing else.
    """

    def _read_load_local_packet(self, first_packet):
        conn = self.connection
        name = pymysql_connections.LoadLocalPacketWrapper(first_packet).filename
        data = conn.infile_data if name in (INFILE_NAME, INFILE_NAME.encode()) else None
        try:
            if data:
                view = memoryview(data)
                for start in range(0, len(view), INFILE_PACKET):
                    conn.write_packet(view[start:start + INFILE_PACKET])
        finally:
            conn.write_packet(b"")  # the end of the data, sent even on an error
            ok_packet = conn._read_packet()
        if data is None:
            raise pymysql_err.OperationalError(
                2000, f"the server asked for a local file that is not the batch: {name!r}")
        if not ok_packet.is_ok_packet():
            raise pymysql_err.OperationalError(CR_COMMANDS_OUT_OF_SYNC, "Commands Out of Sync")
        self._read_ok_packet(ok_packet)
        conn.infile_warnings = self.warning_count


class InfileConnection(pymysql_connections.Connection):
    """A PyMySQL connection that asks for LOAD DATA LOCAL and feeds it from memory."""

    infile_data = None
    infile_warnings = 0

    def __init__(self, *args, **kwargs):
        kwargs["local_infile"] = True
        super().__init__(*args, **kwargs)

    def _read_query_result(self, unbuffered=False):
        # PyMySQL's own, with _InfileResult for MySQLResult.
        self._result = None
        result = _InfileResult(self)
        if unbuffered:
            result.init_unbuffered_query()
        else:
            result.read()
        self._result = result
        if result.server_status is not None:
            self.server_status = result.server_status
        return result.affected_rows


_infile_engines = {}
_infile_lock = threading.Lock()


def infile_engine(engine):
    """An engine like ``engine`` whose connections are :class:`InfileConnection`.

    None when ``engine`` is not MariaDB/MySQL over PyMySQL, or when its server
    refuses LOAD DATA LOCAL (``local_infile`` OFF); the writers then use
    multi-row INSERTs. The server is asked once per process and database.
    A chunk holds one connection for all its batches. They are pooled: a new
    PyMySQL connection costs tens of milliseconds of CPU (its TLS context).
    """
    if engine.dialect.name != "mysql" or engine.dialect.driver != "pymysql":
        return None
    key = engine.url.render_as_string(hide_password=False)
    with _infile_lock:
        if key not in _infile_engines:
            infile = make_engine(key)
            event.listen(infile, "do_connect", _connect_infile)
            if accepts_local_infile(infile):
                _infile_engines[key] = infile
            else:
                log.warning("The database server refuses LOAD DATA LOCAL INFILE (its "
                            "local_infile is OFF): imports use multi-row INSERTs, about "
                            "twice as much of its CPU per row.")
                infile.dispose()
                _infile_engines[key] = None
        return _infile_engines[key]


def check_local_infile(engine):
    """Ask the server at start-up whether it takes LOAD DATA LOCAL (see :func:`infile_engine`).

    A refusal is logged when the process starts, not at its first import.
    A server that does not answer yet is asked again at the first chunk.
    """
    # The connection that asked stays in the pool: a worker's first chunk would
    # otherwise pay a new one (tens of milliseconds of CPU, its TLS context).
    try:
        infile_engine(engine)
    except Exception as exc:
        # No users table yet (`vexpenses migrate` on a new database) is no news.
        level = logging.INFO if mysql_error_code(exc) == ER_NO_SUCH_TABLE else logging.WARNING
        log.log(level, "Could not ask the database server whether it takes LOAD DATA LOCAL "
                "INFILE (%s); the first import will ask again.", getattr(exc, "orig", exc))


def _connect_infile(dialect, connection_record, cargs, cparams):
    return InfileConnection(*cargs, **cparams)


def accepts_local_infile(engine):
    """Whether the server takes a LOAD DATA LOCAL from this engine's connections.

    It loads nothing into users and rolls back.
    """
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        raw.infile_data = b""
        try:
            conn.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{INFILE_NAME}' IGNORE INTO TABLE users "
                                 "CHARACTER SET utf8mb4 (name, email, birth_date)")
        except Exception as exc:
            if mysql_error_code(exc) in INFILE_REFUSED:
                return False
            raise
        finally:
            raw.infile_data = None
            conn.rollback()
    return True
