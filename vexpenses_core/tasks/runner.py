"""Running a task: a request made for it, its transaction, its retries."""

import functools
import logging
import uuid

from pyramid.request import Request
from pyramid.scripting import prepare

from ..db import new_transaction_manager
from ..logging import request_id_var
from ..scripting import mark_job
from ..settings import ConfigurationError
from ..transactions import ATTEMPTS, in_transaction, retrying

log = logging.getLogger(__name__)

#: How often a task runs in all while it meets retryable database errors: the
#: core's one number, under the name vexpenses_core.tasks exports.
DB_ATTEMPTS = ATTEMPTS


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
