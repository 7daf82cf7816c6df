"""A message is never sent twice: not when the transaction after the send fails
and is retried, not when the worker dies between the send and the commit.

Each test makes the first commit after the server accepted a message fail
(``break_commit_after``), against the aiosmtpd sink and the real database,
and lets the task runner retry, or runs the task again as a broker
redelivering it would.
"""

import datetime

import pymysql
import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from vexpenses_mailer import tasks
from vexpenses_mailer.delivery import STALE_AFTER
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.services import MailService

from vexpenses_core import make_app
from vexpenses_core.db import new_transaction_manager, utcnow
from vexpenses_core.migrate import alembic_config, upgrade
from vexpenses_core.tasks import run_task, runner
from vexpenses_core.testing import base_settings, make_user


def rows(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
    finally:
        session.close()


class WorkerDied(Exception):
    """What a killed worker leaves: the send done, its commit never made."""


def deadlock():
    # What MariaDB answers to a deadlock: the task runner retries after it.
    return OperationalError("COMMIT", {}, pymysql.err.OperationalError(
        1213, "Deadlock found when trying to get lock; try restarting transaction"))


def break_commit_after(app, accepted, error):
    """Make the first commit of a task's transaction once the sink holds
    ``accepted`` messages raise ``error()``; it is aborted, nothing written."""
    fired = []

    class Breaker:
        def beforeCompletion(self, txn):
            if app.sink.count >= accepted and not fired:
                fired.append(True)
                raise error()

        def afterCompletion(self, txn):
            pass

        def newTransaction(self, txn):
            pass

    breaker = Breaker()  # held here: a manager keeps its synchronizers weakly

    def transaction_manager():
        tm = new_transaction_manager()
        tm.registerSynch(breaker)
        return tm

    app.monkeypatch.setattr(runner, "new_transaction_manager", transaction_manager)
    return fired


@pytest.fixture
def app(mail_app, monkeypatch):
    app = mail_app()
    app.monkeypatch = monkeypatch
    return app


def test_a_normal_send_is_committed_sent_after_one_attempt(app):
    user_id, _ = make_user(app.registry, email="bia@example.com", name="Bia")
    run_task(app.registry, tasks.send, ("welcome", user_id, {}, "en", "welcome:k1"), {})
    assert [m.rcpt_tos for m in app.sink.messages] == [["bia@example.com"]]
    [row] = rows(app)
    assert (row.status, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.sent_at is not None and row.claimed_at is not None
    assert app.failures == []


def test_a_deadlock_after_the_server_took_it_does_not_send_it_again(app):
    user_id, _ = make_user(app.registry, email="bia@example.com", name="Bia")
    fired = break_commit_after(app, 1, deadlock)
    run_task(app.registry, tasks.send, ("reset", user_id,
                                        {"sealed": app.registry.mailer.seal(
                                            {"reset_url": "https://x.test/r?t=1"})},
                                        "en", "reset:k1"), {})
    assert fired  # the transaction did fail, and was run again
    assert app.sink.count == 1
    [row] = rows(app)
    assert (row.status, row.attempts) == ("sent", 1)


@pytest.mark.parametrize("kind", ["welcome", "account_deleted"])
def test_a_worker_that_dies_after_the_send_is_not_followed_by_a_second_send(app, kind):
    user_id, _ = make_user(app.registry, email="bia@example.com", name="Bia")
    to = None
    if kind == "account_deleted":
        to = app.registry.mailer.seal({"name": "Bia", "email": "bia@example.com"})
    args = (kind, user_id, {"by_admin": False}, "en", f"{kind}:k1")
    break_commit_after(app, 1, lambda: WorkerDied("killed"))
    with pytest.raises(WorkerDied):
        run_task(app.registry, tasks.send, args, {"to": to})
    assert app.sink.count == 1

    # Redelivered at once: the row says another run is sending it.
    run_task(app.registry, tasks.send, args, {"to": to})
    assert app.sink.count == 1
    [row] = rows(app)
    assert (row.status, row.attempts) == ("sending", 1)
    assert app.failures == []

    # Redelivered long after: that run is dead, and the server may have the
    # message. At most once: failed, announced, not sent again.
    session = app.registry.dbsession_factory()
    session.execute(update(MailDelivery).values(
        claimed_at=utcnow() - STALE_AFTER - datetime.timedelta(seconds=1)))
    session.commit()
    session.close()
    run_task(app.registry, tasks.send, args, {"to": to})
    run_task(app.registry, tasks.send, args, {"to": to})
    assert app.sink.count == 1
    [row] = rows(app)
    error = "interrupted during attempt 1: the server may have accepted it; not sent again"
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, error)
    address = "(erased)" if kind == "account_deleted" else "bia@example.com"
    assert row.recipient == address
    assert app.failures == [{"message_id": row.id, "to": address, "kind": kind,
                             "error": error}]


def test_admins_find_a_mail_whose_worker_died_mid_send(app):
    user_id, _ = make_user(app.registry, email="bia@example.com", name="Bia")
    _, token = make_user(app.registry, email="admin@example.com", is_admin=True)
    break_commit_after(app, 1, lambda: WorkerDied("killed"))
    with pytest.raises(WorkerDied):
        run_task(app.registry, tasks.send, ("welcome", user_id, {}, "en", "welcome:k1"), {})
    admin = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/mailer/deliveries"
    page = app.get(url, {"status": "sending"}, headers=admin, status=200).json["data"]
    assert [(d["recipient"], d["status"], d["attempts"], d["sent_at"])
            for d in page["data"]] == [("bia@example.com", "sending", 1, None)]
    assert app.get(url, {"status": "sent"}, headers=admin).json["data"]["data"] == []


def test_a_batch_cut_short_by_a_dead_worker_sends_each_invitation_once(app):
    ids = [make_user(app.registry, email=f"p{i}@example.com", name=f"P{i}")[0]
           for i in range(3)]
    sealed = app.registry.mailer.seal([[uid, f"token-{uid}"] for uid in ids])
    break_commit_after(app, 2, lambda: WorkerDied("killed"))
    with pytest.raises(WorkerDied):
        run_task(app.registry, tasks.send_invitations, (5, sealed, "en"), {})
    assert app.sink.count == 2

    run_task(app.registry, tasks.send_invitations, (5, sealed, "en"), {})
    run_task(app.registry, tasks.send_invitations, (5, sealed, "en"), {})
    # The first sent, the second unknown (sent, its outcome lost), the third
    # never tried before: sent by the second run.
    assert sorted(m.rcpt_tos[0] for m in app.sink.messages) == [
        "p0@example.com", "p1@example.com", "p2@example.com"]
    assert [(r.recipient, r.status, r.attempts) for r in rows(app)] == [
        ("p0@example.com", "sent", 1), ("p1@example.com", "sending", 1),
        ("p2@example.com", "sent", 1)]


def test_a_deadlock_after_a_batch_message_does_not_send_the_batch_again(app):
    ids = [make_user(app.registry, email=f"p{i}@example.com", name=f"P{i}")[0]
           for i in range(3)]
    sealed = app.registry.mailer.seal([[uid, f"token-{uid}"] for uid in ids])
    fired = break_commit_after(app, 2, deadlock)
    run_task(app.registry, tasks.send_invitations, (5, sealed, "en"), {})
    assert fired
    assert app.sink.count == 3
    assert [(r.status, r.attempts) for r in rows(app)] == [("sent", 1)] * 3


def test_a_key_another_run_claimed_meanwhile_is_left_to_it(app, monkeypatch):
    ids = [make_user(app.registry, email=f"p{i}@example.com", name=f"P{i}")[0]
           for i in range(2)]
    first = app.registry.mailer.seal([[ids[0], "token-a"]])
    run_task(app.registry, tasks.send_invitations, (5, first, "en"), {})
    # As if the second run looked before the first claimed: its INSERT of
    # p0's row meets the unique key, and p1's still goes.
    monkeypatch.setattr(MailService, "_existing", lambda self, keys: {})
    both = app.registry.mailer.seal([[uid, f"token-{uid}"] for uid in ids])
    run_task(app.registry, tasks.send_invitations, (5, both, "en"), {})
    assert [m.rcpt_tos for m in app.sink.messages] == [["p0@example.com"], ["p1@example.com"]]
    assert [(r.recipient, r.status) for r in rows(app)] == [
        ("p0@example.com", "sent"), ("p1@example.com", "sent")]


# -- the migration ----------------------------------------------------------------


def test_mailer_0002_adds_claimed_at_and_takes_it_back(fresh_url, environ_clean):
    app = make_app(base_settings(fresh_url, "mailer"))
    upgrade(app.registry)
    engine = app.registry.dbengine

    def columns():
        return {c["name"] for c in sa.inspect(engine).get_columns("mail_deliveries")}

    assert "claimed_at" in columns()
    command.downgrade(alembic_config(app.registry), "mailer@mailer_0001")
    assert "claimed_at" not in columns() and "sent_at" in columns()
    upgrade(app.registry)
    assert "claimed_at" in columns()
    engine.dispose()
