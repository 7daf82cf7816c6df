"""The audit pipelines' process lifecycle: started with the app, flushed at exit.

Each pipeline starts its own flusher thread at its first record, and again
in a forked child (see :meth:`~vexpenses_audit_log.pipeline.AuditPipeline.put`).
This module does the rest: it starts the flusher of a worker that only
drains, writes what every pipeline still holds when the process exits
cleanly (``atexit``), and turns SIGTERM into such an exit where nobody
handles it.
"""

import atexit
import signal
import threading
import weakref

#: Every pipeline of this process, closed at exit.
pipelines = weakref.WeakSet()


def start(registry):
    """What the app's start-up does for the audit log in this process."""
    # So that pserve stopped by SIGTERM (supervisord, docker stop) still
    # writes what it buffered: see install_sigterm_handler.
    if registry.audit_log_settings.sigterm:
        install_sigterm_handler()
    if registry.audit_log_settings.drain == "workers":
        # A worker must drain even when none of its tasks makes a record.
        registry.audit_log.start()


def _close_all():
    for pipeline in list(pipelines):
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
