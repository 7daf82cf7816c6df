"""Getting records from hook calls into the chain, off the request's path.

A hook call only appends a dict to an in-memory deque. A background thread
(one per process, started on the first record) takes them from there every
``flush_seconds``, or sooner once ``batch_size`` are waiting, and:

- **memory transport** (the embedded default): appends them to the chain
  itself, in batches;
- **redis transport** (when Redis is configured): pushes them to a Redis
  list, then drains that list into the chain while holding a Redis lock,
  one process at a time; records wait in Redis, not in a process, when the
  database is down or a process stops. With Redis tasks only the worker
  processes drain (``vexpenses.audit_log.drain``), so a web process spends
  nothing on the chain.

Either way the write has its own connection and transaction, so a request
that fails or is rolled back (a failed login) still leaves its record.
Everything still buffered is written when the process exits cleanly
(``atexit``; SIGTERM included): see :mod:`vexpenses_audit_log.lifecycle`.
"""

import collections
import logging
import os
import threading

from redis.exceptions import RedisError

from .lifecycle import pipelines
from .relay import DatabaseUnavailable, write_or_isolate

log = logging.getLogger(__name__)


class AuditPipeline:
    """The per-process buffer and its flusher thread."""

    def __init__(self, writer, batch_size=500, flush_seconds=1.0, max_buffer=100_000,
                 relay=None, may_drain=lambda: True):
        self.writer = writer
        self.relay = relay
        self.may_drain = may_drain  # whether this process writes what waits in Redis
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self._pending = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flush_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._thread = None
        self._pid = None
        self._down = False
        self.dropped = 0
        self.closed = False
        pipelines.add(self)

    # -- the hot path ---------------------------------------------------

    def put(self, record):
        if self._pid != os.getpid():  # first record, or a forked child
            self._start()
        if len(self._pending) >= self.max_buffer:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("the audit buffer is full (%d records): %d records dropped",
                          self.max_buffer, self.dropped)
            return
        self._pending.append(record)
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def pending(self):
        return len(self._pending)

    # -- the flusher ----------------------------------------------------

    def start(self):
        """Start the flusher now, not at the first record (a worker that only drains)."""
        if self._pid != os.getpid():
            self._start()

    def _start(self):
        with self._start_lock:
            if self.closed or self._pid == os.getpid():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="vexpenses-audit-flusher",
                                            daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush(wait=False)
            except Exception as exc:  # keep the thread alive; the next round retries
                log.error("audit flush failed (%s)", type(exc).__name__)

    def flush(self, direct=False, wait=True, wait_drain=None, drain=None):
        """Write what this process holds; with Redis, then drain the shared list.

        ``direct`` writes straight to the database even with Redis (commands).
        ``wait`` waits for a flush already running here, and (unless
        ``wait_drain`` says otherwise) for the Redis lock. ``drain`` says
        whether to drain Redis (default: ``may_drain()``).
        Returns how many rows this call added to the table.
        """
        drain = self.may_drain() if drain is None else drain
        wait_drain = wait if wait_drain is None else wait_drain
        if not self._flush_lock.acquire(timeout=60 if wait else 0):
            return 0
        try:
            written = 0
            while self._pending:
                batch = self._take()
                if self.relay is not None and not direct:
                    try:
                        self.relay.push(batch)
                        continue
                    except RedisError as exc:
                        log.warning("could not push audit records to Redis (%s); "
                                    "writing them to the database", type(exc).__name__)
                try:
                    written += write_or_isolate(self.writer, batch)
                except DatabaseUnavailable:
                    self._pending.extendleft(reversed(batch))  # keep the order for later
                    self._report_down()
                    return written
            if self.relay is not None and not direct and drain:
                try:
                    written += self.relay.drain(self.writer, wait=wait_drain)
                except DatabaseUnavailable:
                    self._report_down()  # the records stay in Redis
                    return written
                except RedisError as exc:
                    log.warning("could not drain audit records from Redis (%s)",
                                type(exc).__name__)
            if self._down:
                log.warning("the audit log database is back; buffered records written")
                self._down = False
            return written
        finally:
            self._flush_lock.release()

    def _take(self):
        batch = []
        pending = self._pending
        while pending and len(batch) < self.batch_size:
            batch.append(pending.popleft())
        return batch

    def _report_down(self):
        if not self._down:
            log.error("the audit log database is unreachable; keeping records to retry")
            self._down = True

    def close(self, timeout=30):
        """Stop the flusher and write everything left (process exit, tests)."""
        self.closed = True
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        try:
            # Pushed to Redis is safe: do not hold up the exit for another
            # process's drain.
            self.flush(wait_drain=False)
        except Exception as exc:
            log.error("audit records could not be written at exit (%s)", type(exc).__name__)
        if self._pending:
            log.error("%d audit records could not be written before exit", len(self._pending))
