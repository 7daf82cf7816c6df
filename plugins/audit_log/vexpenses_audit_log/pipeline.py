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
(``atexit``; SIGTERM included, see :func:`install_sigterm_handler`).
"""

import atexit
import collections
import json
import logging
import os
import signal
import threading
import time
import uuid
import weakref

from redis.exceptions import RedisError

log = logging.getLogger(__name__)


class DatabaseUnavailable(Exception):
    pass


def write_or_isolate(writer, records):
    """Append ``records``; when the batch fails but the database answers, write them
    one at a time and drop (loudly) only those that cannot be written at all."""
    try:
        return writer.append(records)
    except Exception as exc:
        if not writer.reachable():
            raise DatabaseUnavailable() from exc
    written = 0
    for record in records:
        try:
            written += writer.append([record])
        except Exception as exc:
            if not writer.reachable():
                raise DatabaseUnavailable() from exc
            log.error("dropped audit record %s of the %s hook: it cannot be written (%s)",
                      record.get("uid"), record.get("hook"), type(exc).__name__)
    return written


# Trim what was just written, and renew the lock, only if it is still ours:
# a drainer that stalled past the lock's expiry must not trim records that
# another drainer has not written yet.
TRIM_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('LTRIM', KEYS[2], tonumber(ARGV[2]), -1)
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
    return 1
end
return 0
"""
RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisRelay:
    """Records pass through a Redis list; one process at a time writes them."""

    LOCK_MS = 30_000

    def __init__(self, redis, queue_key, lock_key, batch_size):
        self.redis = redis
        self.queue_key = queue_key
        self.lock_key = lock_key
        self.batch_size = batch_size
        self._trim = redis.register_script(TRIM_SCRIPT)
        self._release = redis.register_script(RELEASE_SCRIPT)

    def push(self, records):
        self.redis.rpush(self.queue_key, *(json.dumps(r, separators=(",", ":"))
                                           for r in records))

    def waiting(self):
        return self.redis.llen(self.queue_key)

    def drain(self, writer, wait=True, timeout=30):
        """Write what waits in Redis; returns rows written (0 if another process drains)."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + timeout
        while not self.redis.set(self.lock_key, token, nx=True, px=self.LOCK_MS):
            if not wait or time.monotonic() > deadline:
                return 0
            time.sleep(0.02)
        written = 0
        try:
            while True:
                raw = self.redis.lrange(self.queue_key, 0, self.batch_size - 1)
                if not raw:
                    break
                records = [record for record in map(_decode, raw) if record is not None]
                written += write_or_isolate(writer, records)
                if not self._trim(keys=[self.lock_key, self.queue_key],
                                  args=[token, len(raw), self.LOCK_MS]):
                    log.warning("lost the audit drain lock; another process carries on")
                    break
        finally:
            self._release(keys=[self.lock_key], args=[token])
        return written


def _decode(raw):
    try:
        record = json.loads(raw)
        if isinstance(record, dict) and "uid" in record:
            return record
    except ValueError:
        pass
    log.error("dropped an unreadable audit record from Redis")
    return None


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
        _pipelines.add(self)

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


_pipelines = weakref.WeakSet()


def _close_all():
    for pipeline in list(_pipelines):
        if not pipeline.closed:
            pipeline.close()


# Registered when the plugin is imported, before the core registers its
# queue's close in make_app: atexit runs last-in first-out, so in-process
# tasks finish (and their hook calls are buffered) before this final flush.
atexit.register(_close_all)


def install_sigterm_handler():
    """Turn SIGTERM into a clean exit, so atexit (and the final flush) runs.

    Only where nobody handles SIGTERM yet, in the main thread: under pserve
    and waitress, whose loop stops on SystemExit and lets running requests
    finish. The worker and its supervisor install their own handlers later,
    which replace this one.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    return True


def _exit_on_sigterm(signum, frame):
    raise SystemExit(0)
