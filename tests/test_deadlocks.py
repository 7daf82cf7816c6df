"""A MySQL deadlock (1213) that reaches our code unmarked is retried, and commits once.

The engine's ``handle_error`` marks a deadlock raised by a statement; these
tests raise one where that marking never happens (from the work itself, or
from the flush at commit), so only the transaction's data manager
(zope.sqlalchemy knows pymysql's 1213) can tell that it is retryable, and
only while the transaction is still open.
"""

import pytest
import sqlalchemy as sa
from sqlalchemy import event, func, select
from vexpenses_hello.models import Greeting

from vexpenses_core import task
from vexpenses_core.tasks import run_task
from vexpenses_core.testing import deadlock_error


def greetings(registry, name):
    with registry.dbengine.connect() as conn:
        return conn.scalar(select(func.count(Greeting.id)).where(Greeting.name == name))


def adding(name, runs, deadlocked):
    """A task that adds a greeting, flushes it, and deadlocks while ``deadlocked(run)``."""

    @task(name=f"test.deadlock.{name}")
    def add(request):
        runs.append(1)
        request.dbsession.add(Greeting(name=name))
        request.dbsession.flush()
        if deadlocked(len(runs)):
            raise deadlock_error("UPDATE hello_greetings SET name=%s")
        return len(runs)

    return add


def test_an_unmarked_deadlock_in_a_task_runs_it_again(testapp):
    registry = testapp.app.registry
    runs = []
    assert run_task(registry, adding("once", runs, lambda run: run == 1), (), {}) == 2
    assert greetings(registry, "once") == 1


def test_an_unmarked_deadlock_at_commit_runs_the_task_again(testapp):
    registry = testapp.app.registry
    runs, flushes = [], []

    @task(name="test.deadlock_at_commit")
    def add(request):
        runs.append(1)
        session = request.dbsession

        @event.listens_for(session, "before_flush")
        def fail_first_flush(session, context, instances):
            flushes.append(1)
            if len(flushes) == 1:
                raise deadlock_error("UPDATE hello_greetings SET name=%s")

        session.add(Greeting(name="at-commit"))  # flushed by the commit

    run_task(registry, add, (), {})
    assert len(runs) == 2
    assert greetings(registry, "at-commit") == 1


def test_a_deadlock_that_never_ends_is_raised(testapp):
    registry = testapp.app.registry
    runs = []
    with pytest.raises(sa.exc.OperationalError):
        run_task(registry, adding("never", runs, lambda run: True), (), {})
    assert len(runs) == 3
    assert greetings(registry, "never") == 0
