"""The task bridge: sent only after commit, plain values only, safe under concurrency."""

import threading

import pytest
import transaction
from sqlalchemy import func, select
from vexpenses_hello.models import Greeting
from vexpenses_hello.tasks import greet

from vexpenses_core.tasks import check_plain


def greeting_count(registry):
    session = registry.dbsession_factory()
    try:
        return session.scalar(select(func.count(Greeting.id)))
    finally:
        session.close()


def test_request_that_raises_after_queueing_sends_no_task(standin_app):
    testapp = standin_app
    registry = testapp.app.registry
    sent = []
    original = registry.queue.send
    registry.queue.send = lambda *a, **kw: sent.append(a) or original(*a, **kw)
    res = testapp.post_json("/api/v1/standin/greetings", {"name": "Ana", "fail": True},
                            status=500)
    assert res.json == {"status": False, "message": "Server error.", "errors": "Server error."}
    assert "failing on purpose" not in res.text
    assert registry.queue.drain(5)
    assert sent == []
    # and the row written before the failure was rolled back
    assert greeting_count(registry) == 0


def test_committed_request_sends_exactly_one_task(testapp):
    registry = testapp.app.registry
    sent = []
    original = registry.queue.send
    registry.queue.send = lambda *a, **kw: sent.append(a) or original(*a, **kw)
    testapp.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert [s[0] for s in sent] == ["hello.greet"]


def test_concurrent_requests_each_send_their_task(testapp):
    """Many web threads share the one bridge loop."""
    registry = testapp.app.registry
    errors = []

    def post(i):
        try:
            testapp.post_json("/api/v1/hello/greetings", {"name": f"user{i}"}, status=201)
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert registry.queue.drain(30)
    session = registry.dbsession_factory()
    rows = session.scalars(select(Greeting)).all()
    session.close()
    assert len(rows) == 16
    assert all(row.message == f"Hello, {row.name}!" for row in rows)


class Thing:
    pass


@pytest.mark.parametrize("value", [Thing(), {1: "a"}, [object()], {"a": {"b": Thing()}}, b"x"])
def test_only_plain_values_cross_the_queue(value):
    with pytest.raises(TypeError):
        check_plain(value)


@pytest.mark.parametrize("value", [1, "a", None, 1.5, True, [1, "a"], {"a": [1, {"b": None}]}])
def test_plain_values_are_accepted(value):
    check_plain(value)


def test_enqueue_refuses_orm_objects(testapp):
    registry = testapp.app.registry
    with pytest.raises(TypeError, match="cannot cross the queue"):
        registry.queue.send(greet, Greeting(name="x"))


def test_unknown_task_name_is_refused(testapp):
    with pytest.raises(LookupError, match="no task named"):
        testapp.app.registry.queue.send("nope.nothing")


def test_send_outside_a_transaction_goes_at_once(testapp):
    """Scripts and tasks without an open transaction send immediately."""
    from vexpenses_core.tasks import make_task_request

    registry = testapp.app.registry
    request = make_task_request(registry)
    request.tm = transaction.TransactionManager(explicit=True)
    session = registry.dbsession_factory()
    greeting = Greeting(name="Bia")
    session.add(greeting)
    session.commit()
    registry.queue.enqueue(request, greet, greeting.id)
    assert registry.queue.drain(10)
    session.expire_all()
    assert session.get(Greeting, greeting.id).message == "Hello, Bia!"
    session.close()


def test_task_runs_in_its_own_transaction_and_rolls_back_on_error(testapp):
    from vexpenses_core.tasks import run_task

    registry = testapp.app.registry

    def failing(request):
        request.dbsession.add(Greeting(name="ghost"))
        request.dbsession.flush()
        raise ValueError("boom")

    with pytest.raises(ValueError):
        run_task(registry, failing, (), {})
    assert greeting_count(registry) == 0

    def succeeding(request):
        request.dbsession.add(Greeting(name="real"))
        return request.request_id

    request_id = run_task(registry, succeeding, (), {})
    assert request_id.startswith("task-")
    assert greeting_count(registry) == 1


def test_task_and_command_requests_are_marked_as_jobs(testapp, monkeypatch):
    from pyramid.request import Request

    from vexpenses_core import scripting, task
    from vexpenses_core.scripting import bootstrap_app, is_job
    from vexpenses_core.tasks import make_task_request, run_task

    registry = testapp.app.registry
    seen = []

    @task(name="test.mark")
    def marked(request):
        seen.append((is_job(request), request.environ["vexpenses.job"]))

    run_task(registry, marked, (), {})
    assert seen == [(True, "test.mark")]
    assert is_job(make_task_request(registry))
    assert not is_job(Request.blank("/"))  # as an HTTP request comes in
    # A command's request: what pyramid.paster.bootstrap returns, marked.
    monkeypatch.setattr(scripting, "setup_logging", lambda uri: None)
    monkeypatch.setattr(scripting, "bootstrap", lambda uri: {
        "request": Request.blank("/"), "registry": registry, "closer": lambda: None})
    env = bootstrap_app("x.ini")
    assert is_job(env["request"]) and env["request"].environ["vexpenses.job"] == "command"
