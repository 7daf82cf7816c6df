"""``vexpenses worker``: a supervisor and N worker processes.

Each worker process loads the same CONFIG (settings, plugins, tasks) and
runs tasks from the Redis stream with ``vexpenses.worker.threads`` threads.
The supervisor replaces a worker that dies; the task it held is delivered
again by the broker once its redelivery timeout passes. It also sends the
tasks that stayed in the outbox because their send after commit failed.
"""

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time

from taskiq.receiver import Receiver

from .scripting import bootstrap_app, startup_problems
from .settings import ConfigurationError

log = logging.getLogger(__name__)

# A worker that dies sooner than this after starting is restarted with a pause,
# so that a broken config does not spin the CPU.
FAST_FAILURE_SECONDS = 5
STOP_GRACE_SECONDS = 30


def run_supervisor(config_uri, count):
    """Start ``count`` worker processes and keep that many alive until signalled."""
    if count < 1:
        raise ConfigurationError("--workers must be at least 1")
    # Fail here, once, with a clear message rather than in every child.
    env = bootstrap_app(config_uri)
    registry = env["registry"]
    if registry.settings["vexpenses.tasks.broker"] != "redis":
        env["closer"]()
        raise ConfigurationError(
            "workers need a Redis broker: set vexpenses.redis_url (VEXPENSES_REDIS_URL). "
            "Without Redis, tasks run inside the web process and no worker is needed."
        )
    try:
        # A Redis that cannot be reached stops us here, with one line, rather
        # than every worker, again and again.
        registry.redis.ping()
    except Exception:
        env["closer"]()
        raise
    relay_stop = threading.Event()
    relay = threading.Thread(target=relay_outbox, args=(registry, relay_stop),
                             name="vexpenses-outbox", daemon=True)
    relay.start()
    try:
        return _supervise(config_uri, count)
    finally:
        relay_stop.set()
        relay.join(35)
        registry.queue.close()
        env["closer"]()


def relay_outbox(registry, stop):
    """Send the outbox's forgotten tasks every third of ``vexpenses.tasks.outbox_seconds``."""
    older_than = registry.settings["vexpenses.tasks.outbox_seconds"]
    while not stop.wait(max(older_than / 3, 0.2)):
        try:
            registry.queue.resend_outbox(older_than)
        except Exception:
            log.warning("could not send the outbox's tasks; trying again later", exc_info=True)


def _supervise(config_uri, count):
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    workers = {}  # slot -> (process, started_at)

    def start(slot):
        process = ctx.Process(
            target=worker_main, args=(config_uri, slot), name=f"vexpenses-worker-{slot}"
        )
        process.start()
        workers[slot] = (process, time.monotonic())
        log.info("started worker %d (pid %d)", slot, process.pid)

    for slot in range(count):
        start(slot)
    print(f"vexpenses: {count} workers running (supervisor pid {os.getpid()})", flush=True)

    while not stopping:
        time.sleep(0.2)
        for slot, (process, started_at) in list(workers.items()):
            if process.is_alive() or stopping:
                continue
            log.warning("worker %d (pid %d) exited with code %s; replacing it",
                        slot, process.pid, process.exitcode)
            if time.monotonic() - started_at < FAST_FAILURE_SECONDS:
                time.sleep(1)
            start(slot)

    log.info("stopping %d workers", len(workers))
    for process, _ in workers.values():
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process, _ in workers.values():
        process.join(max(deadline - time.monotonic(), 0))
        if process.is_alive():
            log.warning("worker pid %d did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
    return 0


def worker_main(config_uri, slot):
    """Entry point of one worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides
    # The supervisor migrated (when asked to) before starting us; N workers
    # racing to run the same migrations would trip over each other.
    os.environ["VEXPENSES_AUTO_MIGRATE"] = "false"
    try:
        env = bootstrap_app(config_uri)
        registry = env["registry"]
        # The app's objects live as long as the process: keep them out of the
        # collector's full passes, which a task allocating many rows (an
        # import) otherwise triggers every few dozen batches, each walking them all.
        gc.freeze()
        try:
            asyncio.run(serve(registry))
        finally:
            env["closer"]()
    except Exception as exc:
        # The supervisor checked the configuration; this is a database or a
        # Redis gone away since. One line each, and the supervisor retries.
        lines = startup_problems(exc)
        if lines is None:
            raise
        for line in lines:
            print(f"vexpenses worker {slot}: {line}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


async def serve(registry, stop_event=None):
    """Run tasks until SIGTERM (or ``stop_event``), then finish running ones."""
    queue = registry.queue
    broker = queue.broker
    loop = asyncio.get_running_loop()
    stop_event = stop_event or asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop_event.set)

    broker.is_worker_process = True
    queue.use_loop(loop)
    await broker.startup()
    threads = registry.settings["vexpenses.worker.threads"]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="vexpenses-task") as pool:
        receiver = Receiver(
            broker=broker,
            executor=pool,
            validate_params=False,
            max_async_tasks=threads,
            max_prefetch=0,
            propagate_exceptions=True,
            run_startup=False,  # started above, before the loop was handed to the bridge
        )
        stopping = asyncio.create_task(stop_event.wait())
        while not stop_event.is_set():
            listening = asyncio.create_task(receiver.listen(stop_event))
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not stop_event.is_set():
                # The receiver died (it should not): log it and listen again.
                log.error("task receiver stopped unexpectedly; restarting it",
                          exc_info=listening.exception())
                await asyncio.sleep(1)
        # The receiver stops fetching and lets running tasks finish.
        try:
            await asyncio.wait_for(listening, STOP_GRACE_SECONDS)
        except (TimeoutError, asyncio.CancelledError):
            listening.cancel()
    await broker.shutdown()
