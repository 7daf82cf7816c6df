"""Retries, permanent failures, header injection and pacing, against aiosmtpd."""

import time

import fakeredis
from sqlalchemy import select
from vexpenses_mailer import tasks
from vexpenses_mailer.delivery import RateLimiter
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.testing import free_port, register

from vexpenses_core.models import User
from vexpenses_core.tasks import run_task
from vexpenses_core.testing import make_user


def rows(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
    finally:
        session.close()


def test_421_then_250_is_delivered_exactly_once(mail_app):
    app = mail_app()
    app.sink.fail_next("421 4.3.0 Try again later")
    register(app, status=201)
    [message] = app.sent()
    assert message.rcpt_tos == ["ana@example.com"]
    assert app.sink.attempts == 2 and app.sink.count == 1
    [row] = rows(app)
    assert (row.status, row.attempts) == ("sent", 2)
    assert row.last_error == "421 4.3.0 Try again later"  # what the retry was for
    assert app.failures == []


def test_dropped_connection_is_retried_on_a_new_one(mail_app):
    app = mail_app()
    app.sink.fail_next("drop", "451 4.7.1 greylisted")
    register(app, status=201)
    assert len(app.sent()) == 1
    [row] = rows(app)
    assert (row.status, row.attempts) == ("sent", 3)


def test_hook_mail_failed_on_a_550_permanent_failure(mail_app):
    app = mail_app()
    app.sink.fail_next("550 5.1.1 <ana@example.com>: no such user")
    register(app, status=201)
    assert app.sent() == []
    assert app.sink.attempts == 1  # not retried
    [row] = rows(app)
    assert (row.status, row.attempts, row.sent_at) == ("failed", 1, None)
    assert row.last_error == "550 5.1.1 <ana@example.com>: no such user"
    assert app.failures == [{"message_id": row.id, "to": "ana@example.com", "kind": "welcome",
                             "error": row.last_error}]


def test_transient_failures_give_up_after_the_last_attempt(mail_app):
    app = mail_app(**{"vexpenses.mailer.retry_attempts": "3"})
    app.sink.fail_next(*["452 4.2.2 mailbox full"] * 3)
    register(app, status=201)
    assert app.sent() == []
    [row] = rows(app)
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "gave up after 3 attempts: 452 4.2.2 mailbox full"
    assert [f["kind"] for f in app.failures] == ["welcome"]


def test_unreachable_server(mail_app):
    app = mail_app(**{"vexpenses.mailer.smtp_url": f"smtp://127.0.0.1:{free_port()}",
                      "vexpenses.mailer.retry_attempts": "2"})
    register(app, status=201)
    app.sent()
    [row] = rows(app)
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error.startswith("gave up after 2 attempts: cannot connect to smtp://")
    assert len(app.failures) == 1


def test_a_hookimpl_that_raises_does_not_lose_the_record(mail_app):
    from vexpenses_core import hookimpl

    app = mail_app()

    class Broken:
        @hookimpl
        def vexpenses_mail_failed(self, message_id):
            raise RuntimeError("listener bug")

    app.registry.pm.register(Broken(), name="broken")
    app.sink.fail_next("554 5.7.1 rejected")
    register(app, status=201)
    app.sent()
    assert [row.status for row in rows(app)] == ["failed"]


def test_a_redelivered_task_sends_nothing_twice(mail_app):
    app = mail_app()
    user_id, _ = make_user(app.registry, email="bia@example.com", name="Bia")
    args = ("welcome", user_id, {}, "pt_BR", "welcome:fixed-key")
    run_task(app.registry, tasks.send, args, {})
    run_task(app.registry, tasks.send, args, {})
    assert len(app.sink.messages) == 1
    assert len(rows(app)) == 1


def test_a_user_deleted_before_the_task_runs_gets_nothing(mail_app):
    app = mail_app()
    run_task(app.registry, tasks.send, ("welcome", 987654, {}, "pt_BR", "k"), {})
    assert app.sink.messages == [] and rows(app) == []


# -- header injection ------------------------------------------------------------

HOSTILE_NAMES = [
    "Ana\r\nBcc: evil@example.org",
    "Ana\nSubject: you won",
    "Ana\rTo: evil@example.org",
    "Eve <evil@example.org>, Bob <bob@example.org>",
    '"Ana" <evil@example.org>',
    "Ana\x00\x85\u2028Bcc: evil@example.org",
    "=?utf-8?q?=0D=0ABcc:_evil@example.org?=",
]


def test_a_name_can_never_inject_a_header(mail_app):
    app = mail_app()
    ids = [make_user(app.registry, email=f"u{i}@example.com", name=name)[0]
           for i, name in enumerate(HOSTILE_NAMES)]
    for user_id in ids:
        run_task(app.registry, tasks.send, ("welcome", user_id, {}, "en", f"k{user_id}"), {})
    messages = app.sink.messages
    assert len(messages) == len(HOSTILE_NAMES)
    for i, message in enumerate(messages):
        assert message.rcpt_tos == [f"u{i}@example.com"]
        assert message["Bcc"] is None and message["Cc"] is None
        assert [a.addr_spec for a in message["To"].addresses] == [f"u{i}@example.com"]
        assert len(message.message.get_all("To")) == 1
        assert len(message.message.get_all("Subject")) == 1
        assert "\n" not in message["Subject"] and "\r" not in message["Subject"]
        assert message["Subject"] == "Welcome to vexpenses"
        head = message.raw.split(b"\r\n\r\n")[0]
        for line in head.split(b"\r\n"):  # only our headers start a line
            assert not line.lower().startswith((b"bcc:", b"cc:")), line
        assert b"\r\nSubject: you won" not in head
    assert all(row.status == "sent" for row in rows(app))


def test_an_address_with_crlf_is_refused_not_sent(mail_app):
    app = mail_app()
    session = app.registry.dbsession_factory()
    user = User(name="Ana", email="ana@example.com\r\nBcc: evil@example.org")
    session.add(user)
    session.commit()
    user_id = user.id
    session.close()
    run_task(app.registry, tasks.send, ("welcome", user_id, {}, "pt_BR", "k"), {})
    assert app.sink.attempts == 0
    [row] = rows(app)
    assert (row.status, row.attempts, row.last_error) == (
        "failed", 0, "invalid recipient address")
    assert app.failures[0]["message_id"] == row.id


# -- one connection per batch, and the pace -------------------------------------


def test_rate_limiter_spaces_messages_evenly_across_workers():
    redis = fakeredis.FakeRedis()
    now = [1000.0]
    slept = []
    a = RateLimiter(redis, "slot", rate=10, clock=lambda: now[0], sleep=slept.append)
    b = RateLimiter(redis, "slot", rate=10, clock=lambda: now[0], sleep=slept.append)
    waits = [a.wait(), b.wait(), a.wait(), b.wait()]  # two workers, one shared pace
    assert [round(w, 3) for w in waits] == [0.0, 0.1, 0.2, 0.3]
    now[0] += 10  # after a quiet spell there is no burst credit to spend
    assert a.wait() == 0.0 and round(b.wait(), 3) == 0.1
    assert RateLimiter(redis, "other", rate=0).wait() == 0.0  # no cap


def test_rate_limit_holds_for_real_sends(mail_app):
    app = mail_app(**{"vexpenses.mailer.rate_limit": "20"})
    ids = [make_user(app.registry, email=f"p{i}@example.com", name=f"P{i}")[0]
           for i in range(5)]
    started = time.monotonic()
    for user_id in ids:
        run_task(app.registry, tasks.send, ("welcome", user_id, {}, "en", f"k{user_id}"), {})
    assert time.monotonic() - started >= 4 / 20 - 0.01
    assert app.sink.count == 5
