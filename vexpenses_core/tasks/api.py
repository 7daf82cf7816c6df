"""Defining a task: the ``@task`` marker, and what may cross the queue."""

import dataclasses

PLAIN_SCALARS = (str, int, float, bool, type(None))


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
