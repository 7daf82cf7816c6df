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

The package, one idea per module: :mod:`.api` (``task``, ``check_plain``),
:mod:`.bridge` (``TaskQueue``, the send side), :mod:`.outbox` and
:mod:`.runner` (``make_task_request``, ``run_task``, ``register_tasks``).
"""

from ..broker import make_broker
from .api import PLAIN_SCALARS, TaskSpec, check_plain, task, task_name
from .bridge import TaskQueue
from .outbox import OUTBOX_BATCH
from .runner import DB_ATTEMPTS, make_task_request, register_tasks, run_task

__all__ = [
    "DB_ATTEMPTS", "OUTBOX_BATCH", "PLAIN_SCALARS", "TaskQueue", "TaskSpec", "check_plain",
    "includeme", "make_task_request", "register_tasks", "run_task", "task", "task_name",
]


def includeme(config):
    """Create ``registry.queue`` and the ``request.enqueue`` method."""
    registry = config.registry
    if getattr(registry, "queue", None) is None:
        registry.queue = TaskQueue(registry, make_broker(registry.settings))

    def enqueue(request, task, *args, **kwargs):
        return request.registry.queue.enqueue(request, task, *args, **kwargs)

    config.add_request_method(enqueue, "enqueue")
