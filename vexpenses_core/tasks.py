"""Background tasks: defining them, sending them from sync code, running them.

A plugin defines a task with :func:`task` and returns it from the
``vexpenses_tasks`` hook. A view sends it with ``request.enqueue(fn, ...)``:
the message leaves only after the request's transaction commits, and only
plain values (ids, strings, numbers, lists and dicts of them) may cross.

With the Redis broker the message is also written to the ``task_outbox``
table in that same transaction, and the row deleted once it is sent. If the
send fails (Redis down at that moment, or the process dies between commit
and send), the row stays and the worker supervisor sends it later
(:meth:`TaskQueue.resend_outbox`): a committed request never loses its task.
Delivery
was at-least-once already; a task must cope with running twice.

A task runs with a request made for it (``request.dbsession``,
``request.redis``, ``request.pm``, ``request.enqueue``) and its own
transaction, committed when it returns, aborted when it raises, and run again
on a MySQL deadlock or lock-wait timeout. A task that commits several times
(a batch import) is marked ``own_transactions`` and runs each unit of work
with :func:`vexpenses_core.transactions.run_in_transaction`.
"""

import asyncio
import dataclasses
import datetime
import functools
import json
import logging
import threading
import uuid

from pyramid.request import Request
from pyramid.scripting import prepare
from sqlalchemy import delete, select
from taskiq import InMemoryBroker
from taskiq.kicker import AsyncKicker
from transaction.interfaces import NoTransaction

from .broker import make_broker
from .db import new_transaction_manager, utcnow
from .logging import request_id_var
from .scripting import mark_job
from .settings import ConfigurationError
from .transactions import after_commit, in_transaction, retrying

log = logging.getLogger(__name__)

#: How often a task is run again after a retryable database error.
DB_ATTEMPTS = 3

PLAIN_SCALARS = (str, int, float, bool, type(None))

#: Outbox rows are sent and deleted in batches of this many.
OUTBOX_BATCH = 500


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    func: object
    own_transactions: bool = False


def task(func=None, *, name=None, own_transactions=False):
    """Mark ``func(request, *args, **kwargs)`` as a background task.

    ``name`` defaults to ``module:function``; plugins should use
    ``<plugin>.<verb>`` so that the name survives refactoring. The function
    is returned unchanged, so it can still be called directly in tests.

    The runner runs the task in one transaction, committed when it returns
    and run again from the start on a deadlock. A task that commits several
    times, say once per batch, sets ``own_transactions=True``: it then runs
    with no transaction open, once, and runs each unit of work with
    ``run_in_transaction(request.tm, work)``
    (:mod:`vexpenses_core.transactions`), which retries only that unit.
    """

    def mark(fn):
        fn.vexpenses_task = TaskSpec(name or f"{fn.__module__}:{fn.__qualname__}", fn,
                                     own_transactions)
        return fn

    return mark(func) if func is not None else mark


def task_name(task_or_name):
    if isinstance(task_or_name, str):
        return task_or_name
    spec = getattr(task_or_name, "vexpenses_task", None)
    if spec is None:
        raise TypeError(f"{task_or_name!r} is not a task: decorate it with vexpenses_core.task")
    return spec.name


def check_plain(value, where="argument"):
    """Refuse anything but plain JSON-like values: ORM objects must not cross."""
    if isinstance(value, PLAIN_SCALARS):
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_plain(item, where)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"task {where}: dict keys must be strings, not {key!r}")
            check_plain(item, where)
        return
    raise TypeError(
        f"task {where}: {type(value).__name__} cannot cross the queue; "
        f"pass ids and plain values instead"
    )


class TaskQueue:
    """The one bridge from sync code to taskiq's async ``kiq``.

    Owns an event loop in a background thread (in the web process) or uses
    the worker's own loop (in a worker process). Thread-safe.
    """

    def __init__(self, registry, broker):
        self.registry = registry
        self.broker = broker
        self._loop = None
        self._thread = None
        self._lock = threading.Lock()
        self._started = False

    @property
    def in_process(self):
        return isinstance(self.broker, InMemoryBroker)

    @property
    def in_worker(self):
        """True in a ``vexpenses worker`` process once it takes tasks."""
        return getattr(self.broker, "is_worker_process", False)

    def use_loop(self, loop):
        """Send through ``loop`` instead of a private thread (worker processes)."""
        self._loop = loop
        self._started = True

    def _ensure_loop(self):
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="vexpenses-task-bridge", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            if not self._started:
                asyncio.run_coroutine_threadsafe(self.broker.startup(), self._loop).result(30)
                self._started = True
        return self._loop

    def send(self, task, *args, **kwargs):
        """Send now, whatever the transaction; returns taskiq's task id."""
        name = task_name(task)
        check_plain(list(args), "arguments")
        check_plain(kwargs, "keyword arguments")
        return self._send(name, args, kwargs, request_id_var.get() or "")

    def _send(self, name, args, kwargs, request_id):
        self._check_registered(name)
        kicker = AsyncKicker(name, self.broker, {"request_id": request_id})
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(kicker.kiq(*args, **kwargs), loop)
        return future.result(30).task_id

    def enqueue(self, request, task, *args, **kwargs):
        """Send once ``request``'s transaction commits; nothing if it aborts."""
        name = task_name(task)
        check_plain(list(args), "arguments")
        check_plain(kwargs, "keyword arguments")
        # Fail now, in the request, rather than after the data has committed.
        self._check_registered(name)
        try:
            txn = request.tm.get()
        except NoTransaction:
            return self.send(name, *args, **kwargs)
        if self.in_process:  # nothing between commit and send can fail but the process
            after_commit(request, self.send, name, *args, **kwargs)
            return None
        from .models import TaskOutbox

        row = TaskOutbox(task=name, payload=json.dumps(
            {"args": list(args), "kwargs": kwargs, "request_id": request_id_var.get() or ""}))
        request.dbsession.add(row)
        try:
            rows = txn.data(self)
        except KeyError:  # the transaction's first task: one hook sends them all
            rows = []
            txn.set_data(self, rows)
            after_commit(request, self._send_outbox, rows)
        rows.append(row)
        return None

    def _check_registered(self, name):
        if self.broker.find_task(name) is None:
            raise LookupError(f"no task named {name!r} is registered; is its plugin enabled?")

    def _send_outbox(self, rows):
        sent = []
        try:
            for row in rows:
                self._send_stored(row.task, row.payload)
                sent.append(row.id)
        except Exception:
            log.warning("could not send task %s after commit; it stays in the outbox and the "
                        "worker supervisor sends it later", rows[len(sent)].task, exc_info=True)
        try:
            with self.registry.dbengine.begin() as conn:
                _delete_outbox(conn, sent)
        except Exception:  # sent twice later, which tasks must cope with anyway
            log.warning("could not delete %d sent tasks from the outbox", len(sent),
                        exc_info=True)

    def _send_stored(self, name, payload):
        """Send a task as the outbox stored it (``payload`` is its JSON text)."""
        data = json.loads(payload)
        return self._send(name, data["args"], data["kwargs"], data["request_id"])

    def resend_outbox(self, older_than):
        """Send outbox rows older than ``older_than`` seconds; return how many were sent.

        Younger rows are left to the after-commit send that is probably under
        way. Stops at the first failed send (Redis is likely down still); the
        rows sent so far are deleted.
        """
        from .models import TaskOutbox

        table = TaskOutbox.__table__
        engine = self.registry.dbengine
        cutoff = utcnow() - datetime.timedelta(seconds=older_than)
        query = (select(table.c.id, table.c.task, table.c.payload)
                 .where(table.c.created_at < cutoff).order_by(table.c.id).limit(OUTBOX_BATCH))
        if engine.dialect.name == "mysql":  # two supervisors never send the same row
            query = query.with_for_update(skip_locked=True)
        sent = []
        with engine.begin() as conn:
            try:
                for row in conn.execute(query).all():
                    try:
                        self._send_stored(row.task, row.payload)
                    except LookupError:  # its plugin is disabled; keep it for when it returns
                        log.error("outbox row %d: no task named %r is registered",
                                  row.id, row.task)
                        continue
                    sent.append(row.id)
            finally:
                _delete_outbox(conn, sent)
        if sent:
            log.warning("sent %d tasks that had stayed in the outbox", len(sent))
        return len(sent)

    def drain(self, timeout=30):
        """Wait for in-process tasks to finish (embedded default, tests, exit)."""
        if not self.in_process or self._loop is None:
            return True

        async def wait():
            while self.broker._running_tasks:
                await asyncio.gather(*list(self.broker._running_tasks), return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(wait(), self._loop).result(timeout)
            return True
        except TimeoutError:
            return False

    def close(self):
        if self._thread is None:
            return
        self.drain()
        if self._started:
            asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._loop = self._thread = None
        self._started = False


def _delete_outbox(conn, ids):
    from .models import TaskOutbox

    table = TaskOutbox.__table__
    for start in range(0, len(ids), OUTBOX_BATCH):
        conn.execute(delete(table).where(table.c.id.in_(ids[start:start + OUTBOX_BATCH])))


def make_task_request(registry, request_id=None, job="task"):
    """A request for code running outside HTTP, with its own transaction.

    It is marked as the job ``job`` (the task's name), so that
    :func:`vexpenses_core.scripting.is_job` is true for it.
    """
    base_url = registry.settings["vexpenses.base_url"]
    request = Request.blank("/", base_url=base_url)
    request.registry = registry
    request.tm = new_transaction_manager()
    mark_job(request, job)
    request.environ["vexpenses.request_id"] = request_id or f"task-{uuid.uuid4().hex}"
    return request


def run_task(registry, func, args, kwargs, request_id=None):
    """Run ``func(request, *args, **kwargs)`` in its own transaction.

    The same code path as a view: a request with ``dbsession`` joined to a
    transaction manager. Retried from the start, with a new request, on
    retryable DB errors. A task marked ``own_transactions`` runs once with
    no transaction open, and retries its units of work itself.
    """
    request_id = request_id or request_id_var.get()  # set from the message's labels
    spec = getattr(func, "vexpenses_task", None)
    job = spec.name if spec is not None else "task"
    own_transactions = spec is not None and spec.own_transactions

    def attempt():
        request = make_task_request(registry, request_id, job)
        env = prepare(request=request, registry=registry)
        token = request_id_var.set(request.request_id)
        try:
            if own_transactions:
                return func(request, *args, **kwargs)
            return in_transaction(request.tm, lambda: func(request, *args, **kwargs))
        finally:
            request_id_var.reset(token)
            env["closer"]()

    if own_transactions:
        return attempt()
    return retrying(attempt, DB_ATTEMPTS, log=log)


def register_tasks(registry, tasks):
    """Register task functions on the registry's broker, each wrapped by :func:`run_task`."""
    broker = registry.queue.broker
    for fn in tasks:
        spec = fn.vexpenses_task
        if broker.find_task(spec.name) is not None:
            raise ConfigurationError(f"two tasks are named {spec.name!r}")

        def runner(*args, __spec=spec, **kwargs):
            return run_task(registry, __spec.func, args, kwargs)

        functools.update_wrapper(runner, spec.func)
        del runner.__wrapped__  # taskiq must see runner's signature, not the task's
        runner.__annotations__ = {}
        broker.register_task(runner, task_name=spec.name)


def includeme(config):
    """Create ``registry.queue`` and the ``request.enqueue`` method."""
    registry = config.registry
    if getattr(registry, "queue", None) is None:
        registry.queue = TaskQueue(registry, make_broker(registry.settings))

    def enqueue(request, task, *args, **kwargs):
        return request.registry.queue.enqueue(request, task, *args, **kwargs)

    config.add_request_method(enqueue, "enqueue")
