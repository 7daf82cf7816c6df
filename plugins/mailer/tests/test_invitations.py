"""The csv_import plugin's events, through a stand-in that adds the same hookspecs."""

import datetime
import urllib.parse

import pytest
from pyramid.scripting import prepare
from sqlalchemy import event, select
from vexpenses_mailer import tasks
from vexpenses_mailer.interfaces import IMailBackend
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.services import MailService
from vexpenses_mailer.testing import html_links, links

from vexpenses_core.models import PasswordReset, User
from vexpenses_core.tasks import run_task

NAMES = ["José Conceição", "Ângela Müller", "Zoë Brandão", "Ítalo Gonçalves", "Lúcia Ñandú"]


@pytest.fixture
def import_app(with_csv_import, mail_app):
    def make(**overrides):
        return mail_app(**{"vexpenses.plugins": "mailer csv_import", **overrides})

    return make


def import_users(app, count, start=0):
    """Insert users the way an import does: no password, in one commit."""
    session = app.registry.dbsession_factory()
    users = [User(name=NAMES[(start + i) % len(NAMES)], email=f"imp{start + i}@example.com")
             for i in range(count)]
    session.add_all(users)
    session.commit()
    ids = [user.id for user in users]
    session.close()
    return ids


def fire(app, hook, **kwargs):
    """Call a csv_import hook as its worker would: in a task's request and transaction."""

    def call(request):
        getattr(request.pm.hook, hook)(request=request, **kwargs)

    run_task(app.registry, call, (), {})
    return app.sent()


def deliveries(app, kind):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(
            select(MailDelivery).where(MailDelivery.kind == kind).order_by(MailDelivery.id)
        ).all()
    finally:
        session.close()


def resets(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(PasswordReset).order_by(PasswordReset.id)).all()
    finally:
        session.close()


def test_hooks_are_optional(mail_app, import_app):
    # without csv_import the mailer starts; with it, the mailer implements its hooks
    plain = mail_app()
    assert plain.registry.pm.hook.vexpenses_users_imported.spec is None
    app = import_app()
    assert app.registry.pm.hook.vexpenses_users_imported.spec is not None
    impls = app.registry.pm.hook.vexpenses_users_imported.get_hookimpls()
    assert [impl.plugin_name for impl in impls] == ["mailer"]


def test_invitations_arrive_with_working_set_password_links(import_app):
    app = import_app()
    ids = import_users(app, 3)
    inserts = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO PASSWORD_RESETS"):
            inserts.append(statement)

    event.listen(app.registry.dbengine, "before_cursor_execute", count)
    try:
        messages = fire(app, "vexpenses_users_imported", import_id=41, user_ids=ids,
                        send_invitations=True)
    finally:
        event.remove(app.registry.dbengine, "before_cursor_execute", count)
    assert len(inserts) == 1  # the tokens of a batch: one INSERT

    assert sorted(m.rcpt_tos[0] for m in messages) == [f"imp{i}@example.com" for i in range(3)]
    for message in messages:
        name = message["To"].addresses[0].display_name
        assert name in NAMES
        assert message["Subject"] == "Seu convite para o vexpenses"
        assert "7 dias" in message.text
        [link] = [url for url in links(message.text) if "/reset-password?" in url]
        assert html_links(message.html) == [link]
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
        assert query["email"] == message.rcpt_tos[0]
        app.get(link.replace("http://localhost", ""), status=200)
        password = "my first password"
        app.post_json("/api/v1/user/recover-password",
                      {**query, "password": password, "password_confirmation": password},
                      status=200)
        app.post_json("/api/v1/user/authenticate",
                      {"email": query["email"], "password": password}, status=201)

    rows = resets(app)
    assert len(rows) == 3
    for row in rows:  # a week, not the reset link's hour
        assert row.expires_at - row.created_at == datetime.timedelta(days=7)
        assert len(row.token_hash) == 64
    assert [r.status for r in deliveries(app, "invitation")] == ["sent"] * 3


def test_invitation_lifetime_is_a_setting(import_app):
    app = import_app(**{"vexpenses.mailer.invitation_days": "2",
                        "vexpenses.mailer.language": "en"})
    [message] = fire(app, "vexpenses_users_imported", import_id=1,
                     user_ids=import_users(app, 1), send_invitations=True)
    assert "valid for 2 days" in message.text
    [row] = resets(app)
    assert row.expires_at - row.created_at == datetime.timedelta(days=2)


def test_no_invitations_when_the_import_or_the_settings_say_no(import_app):
    app = import_app()
    ids = import_users(app, 2)
    assert fire(app, "vexpenses_users_imported", import_id=1, user_ids=ids,
                send_invitations=False) == []
    off = import_app(**{"vexpenses.mailer.invitations": "false"})
    assert fire(off, "vexpenses_users_imported", import_id=2, user_ids=ids,
                send_invitations=True) == []
    assert resets(app) == []


def test_batches_use_one_connection_each(import_app):
    app = import_app(**{"vexpenses.mailer.batch_size": "2"})
    env = prepare(registry=app.registry)
    backend = env["request"].find_service(IMailBackend)  # one per process
    env["closer"]()
    opened = []
    real_open = backend.open
    backend.open = lambda: opened.append(1) or real_open()
    ids = import_users(app, 5)
    messages = fire(app, "vexpenses_users_imported", import_id=9, user_ids=ids,
                    send_invitations=True)
    assert len(messages) == 5
    assert len(opened) == 3  # 2 + 2 + 1


def test_a_permanent_failure_in_a_batch_does_not_stop_the_others(import_app):
    app = import_app()
    app.sink.fail_next("550 5.1.1 no such user", "421 4.3.0 later")
    ids = import_users(app, 3)
    messages = fire(app, "vexpenses_users_imported", import_id=5, user_ids=ids,
                    send_invitations=True)
    assert len(messages) == 2
    statuses = [(r.status, r.attempts) for r in deliveries(app, "invitation")]
    assert statuses == [("failed", 1), ("sent", 2), ("sent", 1)]
    assert [f["kind"] for f in app.failures] == ["invitation"]


def test_invitations_are_not_sent_twice(import_app):
    app = import_app()
    ids = import_users(app, 2)
    fire(app, "vexpenses_users_imported", import_id=3, user_ids=ids, send_invitations=True)
    # the worker died after the send and the task came again
    run_task(app.registry, tasks.invite, (3, ids, "pt_BR"), {})
    app.registry.queue.drain()
    assert app.sink.count == 2
    assert len(resets(app)) == 2
    # unknown and repeated ids are ignored
    fire(app, "vexpenses_users_imported", import_id=4, user_ids=[ids[0], ids[0], 999999],
         send_invitations=True)
    assert app.sink.count == 3


def disable(app, user_id):
    session = app.registry.dbsession_factory()
    session.get(User, user_id).disabled_at = datetime.datetime.now(datetime.UTC)
    session.commit()
    session.close()


def test_a_disabled_user_gets_no_invitation(import_app):
    app = import_app()
    ids = import_users(app, 3)
    disable(app, ids[1])
    messages = fire(app, "vexpenses_users_imported", import_id=6, user_ids=ids,
                    send_invitations=True)
    assert sorted(m.rcpt_tos[0] for m in messages) == ["imp0@example.com", "imp2@example.com"]
    assert [row.user_id for row in resets(app)] == [ids[0], ids[2]]  # no token either


def test_a_user_disabled_once_the_tokens_were_made_gets_no_invitation(import_app):
    app = import_app()
    ids = import_users(app, 2)
    batches = []
    run_task(app.registry,
             lambda request: batches.extend(MailService(request).create_invitations(8, ids)),
             (), {})
    disable(app, ids[0])
    run_task(app.registry, tasks.send_invitations, (8, batches[0], "pt_BR"), {})
    app.registry.queue.drain()
    assert [m.rcpt_tos for m in app.sink.messages] == [["imp1@example.com"]]
    assert [row.user_id for row in deliveries(app, "invitation")] == [ids[1]]


def test_import_summary_to_the_uploader(import_app):
    app = import_app()
    [uploader] = import_users(app, 1)
    counts = {"total": 10, "processed": 10, "imported": 7, "rejected": 2, "duplicates": 1}
    [message] = fire(app, "vexpenses_import_finished", import_id=77, uploader_id=uploader,
                     status=2, counts=counts, send_invitations=True)
    assert message.rcpt_tos == ["imp0@example.com"]
    assert message["Subject"] == "Importação #77 terminou com erros: 7 de 10 importados"
    for label, value in [("Linhas no arquivo", 10), ("Importadas", 7), ("Rejeitadas", 2),
                         ("Duplicadas", 1)]:
        assert f"{label}:" in message.text and str(value) in message.text
        assert label in message.html
    assert "receberão um convite" in message.text
    errors = "http://localhost/api/v1/user/import-status/77/errors"
    assert errors in links(message.text) and html_links(message.html) == [errors]

    # once per import, even if the event comes again
    fire(app, "vexpenses_import_finished", import_id=77, uploader_id=uploader,
         status=2, counts=counts, send_invitations=True)
    assert app.sink.count == 1


def test_clean_import_summary_in_english_and_bad_counts(import_app):
    app = import_app(**{"vexpenses.mailer.language": "en", "vexpenses.mailer.invitations": "0"})
    [uploader] = import_users(app, 1)
    counts = {"total": "10", "imported": None, "rejected": True, "surprise": 5}
    [message] = fire(app, "vexpenses_import_finished", import_id=8, uploader_id=uploader,
                     status=1, counts=counts, send_invitations=True)
    assert message["Subject"] == "Import #8 finished: 0 of 0 imported"
    assert "invitation" not in message.text  # turned off in the settings
    assert "import-status" not in message.text  # nothing to report
    # an import with no uploader (a command-line one) mails nobody
    assert fire(app, "vexpenses_import_finished", import_id=9, uploader_id=None, status=1,
                counts={}, send_invitations=False) == [message]


# Names an uploader controls, as they reach the invitation (the CSV's Nome column).
HOSTILE_NAMES = [
    "Ana\r\nBcc: victim@evil.test",
    "Ana\nSubject: You won a prize",
    "=?utf-8?q?=0D=0ABcc:_victim@evil.test?=",
    "Urgent: your account is suspended, call +1 555 0100",
    "\u202eAna reversed",
    "Ana\x00Nul\x85Nel\u2028Sep",
    "x" * 255,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_an_invitation_subject_is_fixed_text_whatever_the_name(import_app, name):
    app = import_app(**{"vexpenses.mailer.language": "en"})
    session = app.registry.dbsession_factory()
    user = User(name=name, email="invitee@example.com")
    session.add(user)
    session.commit()
    user_id = user.id
    session.close()
    [message] = fire(app, "vexpenses_users_imported", import_id=7, user_ids=[user_id],
                     send_invitations=True)
    assert message["Subject"] == "Your invitation to vexpenses"
    assert message.rcpt_tos == ["invitee@example.com"]
    assert message["Bcc"] is None and message["Cc"] is None
    [to] = message["To"].addresses
    assert to.addr_spec == "invitee@example.com"
    assert len(message.message.get_all("Subject")) == 1
