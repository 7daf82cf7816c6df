"""One way to run work in a transaction: retries, and what happens after commit.

:func:`run_in_transaction` runs a unit of work in a transaction of its own
and commits it; on a retryable error (a MySQL deadlock or lock-wait
timeout) it aborts and runs the work again from the start. The task runner,
tasks that commit several times (``@task(..., own_transactions=True)``) and
the audit chain writer all retry through :func:`retrying`.

:func:`after_commit` runs a function once the request's transaction has
committed: for Redis, e-mail and other things outside the database that
must follow it, never precede it.
"""

import logging
import time

import transaction
import transaction.interfaces
from pyramid_retry import IRetryableError, mark_error_retryable
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

#: How often a unit of work runs in all, and the pause before the second run
#: (it grows by as much before each next one).
ATTEMPTS = 3
PAUSE = 0.05

# MySQL errors after which the whole transaction may safely be run again:
# 1213 deadlock, 1205 lock wait timeout.
RETRYABLE_MYSQL_ERRORS = {1213, 1205}
# SQLite's primary result codes SQLITE_BUSY and SQLITE_LOCKED.
SQLITE_BUSY_ERRORS = {5, 6}


def mysql_error_code(exc):
    """The MySQL/MariaDB error number of a driver error, or of the one a
    SQLAlchemy ``DBAPIError`` wraps; None for anything else."""
    if isinstance(exc, DBAPIError):
        exc = exc.orig
    args = getattr(exc, "args", None)
    return args[0] if args and isinstance(args[0], int) else None


def is_retryable_db_error(exc):
    """True for a database error after which the transaction may run again.

    Marked by the engine (:func:`vexpenses_core.db.make_engine`), or a MySQL
    deadlock or lock-wait timeout that reached us without that marking.
    """
    if IRetryableError.providedBy(exc):
        return True
    return isinstance(exc, DBAPIError) and mysql_error_code(exc) in RETRYABLE_MYSQL_ERRORS


def is_sqlite_busy(exc):
    """True for SQLite's "database is locked" (SQLITE_BUSY) or "database table
    is locked" (SQLITE_LOCKED), extended codes included, of a driver error or
    of the one a SQLAlchemy ``DBAPIError`` wraps.

    Requests and tasks do not run again for it: the busy timeout has waited
    for the lock already. The audit chain writer, apart from any request, does.
    """
    if isinstance(exc, DBAPIError):
        exc = exc.orig
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF in SQLITE_BUSY_ERRORS


def is_retryable(exc, tm):
    """True when the failed transaction of ``tm`` may be run again from the start.

    Ask before ``tm.abort()``: the data managers joined to the transaction
    (zope.sqlalchemy's knows a pymysql deadlock) are gone after it.
    """
    if is_retryable_db_error(exc):
        return True
    try:
        return bool(tm._retryable(type(exc), exc))
    except Exception:  # no transaction, or a data manager that cannot tell
        return False


def retrying(work, attempts=ATTEMPTS, pause=PAUSE, log=log):
    """Call ``work()`` until it returns; run it again after an error marked retryable.

    An error is retryable when it provides pyramid_retry's ``IRetryableError``
    (:func:`in_transaction` marks the ones it finds retryable). After
    ``attempts`` runs, or on any other error, the error is raised.
    """
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:
            if attempt == attempts or not IRetryableError.providedBy(exc):
                raise
            log.warning("%s; running the transaction again (attempt %d of %d)",
                        type(exc).__name__, attempt + 1, attempts)
            time.sleep(pause * attempt)
    return None  # pragma: no cover


def in_transaction(tm, work):
    """Run ``work()`` once in a new transaction of ``tm`` and commit it.

    On an error the transaction is aborted and the error raised, marked
    retryable when it is (decided before the abort, see :func:`is_retryable`).
    ``tm`` must have no open transaction.
    """
    tm.begin()
    try:
        result = work()
        tm.commit()
        return result
    except Exception as exc:
        retry = is_retryable(exc, tm)
        tm.abort()
        if retry:
            mark_error_retryable(exc)
        raise


def run_in_transaction(tm, work, attempts=ATTEMPTS, pause=PAUSE, log=log):
    """Run ``work()`` in a transaction of ``tm`` of its own, and commit it.

    On a retryable error (a MySQL deadlock or lock-wait timeout) the
    transaction is aborted and ``work()`` runs again from the start, up to
    ``attempts`` times, pausing a little longer each time. Any other error
    aborts and is raised. For code that commits several units of work, such
    as a batch import; ``tm`` must have no open transaction.
    """
    return retrying(lambda: in_transaction(tm, work), attempts, pause, log)


def after_commit(request, fn, /, *args, **kwargs):
    """Call ``fn(*args, **kwargs)`` once ``request``'s transaction commits.

    Nothing happens if it aborts. The data is committed by then, so an error
    in ``fn`` is logged, never raised. Call it inside the transaction.
    """

    def hook(committed):
        if not committed:
            return
        try:
            fn(*args, **kwargs)
        except Exception:
            log.warning("%s failed after commit",
                        getattr(fn, "__qualname__", repr(fn)), exc_info=True)

    request.tm.get().addAfterCommitHook(hook)


class LazyTransactionManager(transaction.TransactionManager):
    """An explicit transaction manager whose transaction starts when first needed.

    pyramid_tm begins and commits a transaction around every request. For a
    request that never touches the database and registers no hook (a
    ``GET /me`` answered by the identity cache) that is a transaction object,
    a logger lookup and an empty two-phase commit: about 17 µs of a 110 µs
    request. Here ``begin()`` only notes that a transaction is open; the
    first ``get()`` (a database session joining, an after-commit hook, a
    savepoint) starts the real one, with the annotations ``begin()``'s
    caller made. A commit or abort of a transaction nobody used does nothing.
    """

    def __init__(self):
        super().__init__(explicit=True)
        self._pending = None

    def begin(self):
        if self._txn is not None or self._pending is not None:
            raise transaction.interfaces.AlreadyInTransaction()
        self._pending = _PendingTransaction()
        return self._pending

    def get(self):
        if self._txn is None and self._pending is not None:
            pending, self._pending = self._pending, None
            pending.started(super().begin())
        return super().get()

    def _unused(self):
        if self._txn is None and self._pending is not None:
            self._pending = None
            return True
        return False

    def commit(self):
        if not self._unused():
            super().commit()

    def abort(self):
        if not self._unused():
            super().abort()

    def isDoomed(self):
        if self._txn is None and self._pending is not None:
            return False
        return super().isDoomed()


class _PendingTransaction:
    """What ``begin()`` returns until the transaction starts: takes its
    annotations (pyramid_tm's user and note) and hands them over."""

    def __init__(self):
        self.user = ""
        self.notes = []
        self.txn = None

    def note(self, text):
        if self.txn is not None:
            self.txn.note(text)
        else:
            self.notes.append(text)

    def started(self, txn):
        self.txn = txn
        if self.user:
            txn.user = self.user
        for text in self.notes:
            txn.note(text)


def lazy_transaction_manager(request):
    """pyramid_tm's ``tm.manager_hook``: see :class:`LazyTransactionManager`."""
    return LazyTransactionManager()
