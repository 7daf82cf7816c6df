"""The one bridge from sync code to taskiq's async ``kiq``: :class:`TaskQueue`."""

import asyncio
import threading

from taskiq import InMemoryBroker
from taskiq.kicker import AsyncKicker
from transaction.interfaces import NoTransaction

from ..logging import request_id_var
from ..transactions import after_commit
from . import outbox
from .api import check_plain, task_name


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
        outbox.store(self, request, txn, name, args, kwargs)
        return None

    def task_names(self):
        """The names of every task registered with this queue's broker."""
        return sorted(self.broker.get_all_tasks())

    def _check_registered(self, name):
        if self.broker.find_task(name) is None:
            raise LookupError(f"no task named {name!r} is registered; is its plugin enabled?")

    def resend_outbox(self, older_than):
        """Send outbox rows older than ``older_than`` seconds; return how many were sent."""
        return outbox.resend(self, older_than)

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
