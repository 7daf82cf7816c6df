"""Inserting a batch of new users: one statement per batch, never an overwrite.

``user_writer(db)`` picks the writer for the session's database:

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
import re

from pymysql.constants.SERVER_STATUS import SERVER_STATUS_NO_BACKSLASH_ESCAPES
from pyramid_retry import mark_error_retryable
from sqlalchemy import insert

from vexpenses_core.db import RETRYABLE_MYSQL_ERRORS, utcnow
from vexpenses_core.models import User
from vexpenses_core.transactions import mysql_error_code

# MySQL string literal escapes, as PyMySQL's escape_string writes them.
BACKSLASH_ESCAPES = str.maketrans({"\0": "\\0", "\\": "\\\\", "\n": "\\n", "\r": "\\r",
                                   "\x1a": "\\Z", '"': '\\"', "'": "\\'"})
QUOTES_ONLY = str.maketrans({"'": "''"})
NEEDS_ESCAPE = re.compile(r"['\"\\\x00\x1a\n\r]")
COLUMNS = "name, email, password_hash, birth_date, is_admin, created_at, updated_at"


def user_writer(db):
    if db.get_bind().dialect.name == "mysql":
        return MySQLUserWriter(db)
    return SQLAlchemyUserWriter(db)


class SQLAlchemyUserWriter:
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


class MySQLUserWriter:
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
