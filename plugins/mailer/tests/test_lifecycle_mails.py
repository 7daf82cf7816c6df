"""The account lifecycle's e-mails (issue 12), through the real API to a real SMTP
server: the verification link, the e-mail change's link and notice, and the
goodbye after a deletion, which leaves no trace of the address behind."""

import logging
import urllib.parse

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from vexpenses_mailer.messages import mask
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.services import ERASED, Recipient
from vexpenses_mailer.testing import PASSWORD, html_links, links, register

from vexpenses_core.testing import bearer, make_user, run_workers, wait_for

NAME = "Conceição Ãraújo"
TOKEN_ROUTES = ("/reset-password", "/verify-email", "/confirm-email", "token=")


def deliveries(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
    finally:
        session.close()


def only_link(message, fragment):
    """The one link holding ``fragment``, the same in the text and HTML parts."""
    text = [url for url in links(message.text) if fragment in url]
    html = [url for url in html_links(message.html) if fragment in url]
    assert len(text) == 1 and html == text, (text, html)
    return text[0]


def token_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["token"]


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                         status=status)


def everything_stored(app):
    """Every row of every table, as text: what a dump of the database would show."""
    engine = app.registry.dbengine
    dump = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            dump += [f"{name}: {tuple(row)}" for row in conn.execute(select(table))]
    return "\n".join(dump)


def test_mask_shows_only_the_first_letter_and_the_domain():
    assert mask("novo.endereco@example.org") == "n***@example.org"
    assert mask("b@bücher.de") == "b***@bücher.de"


def test_a_forgotten_recipient_is_scrubbed_from_what_the_row_keeps():
    gone = Recipient(None, "Zé Ninguém", "ze@example.com", forget=True)
    assert gone.stored == ERASED
    assert gone.scrub("550 <ze@example.com> Zé Ninguém", "ze@example.com") == "550 <***> ***"
    kept = Recipient(1, "Zé Ninguém", "ze@example.com")
    assert kept.stored == "ze@example.com"
    assert kept.scrub("550 <ze@example.com>") == "550 <ze@example.com>"


# -- verification --------------------------------------------------------------


def test_hook_email_verification_requested_mail_after_register(mail_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = mail_app(verification=True)
    user_id = register(app, status=201).json["data"]["id"]
    messages = app.sent()
    assert sorted(m["Subject"] for m in messages) == [
        "Bem-vindo(a) ao vexpenses", "Confirme seu e-mail no vexpenses"]
    [verify] = [m for m in messages if m["Subject"].startswith("Confirme")]
    assert verify.rcpt_tos == ["ana@example.com"]
    assert verify["To"].addresses[0].display_name == NAME
    assert f"Olá, {NAME}!" in verify.text and f"Olá, {NAME}!" in verify.html
    # vexpenses.verify_token_minutes is 2880 by default: said in hours
    assert "48 horas" in verify.text and "48 horas" in verify.html
    link = only_link(verify, "/verify-email?")
    assert link.startswith("http://localhost/verify-email?token=")

    # the link's token verifies the address
    token = token_of(link)
    app.post_json("/api/v1/user/verify-email", {"token": token}, status=200)
    me = app.get("/api/v1/user/me", headers=bearer(login(app).json["data"]["token"]))
    assert me.json["data"]["email_verified_at"] is not None

    # the link crossed the queue sealed: never logged, never stored
    assert caplog.records
    assert all(token not in record.getMessage() for record in caplog.records)
    rows = [row for row in deliveries(app) if row.kind == "verify_email"]
    assert [(r.user_id, r.recipient, r.status) for r in rows] == [
        (user_id, "ana@example.com", "sent")]
    assert token not in everything_stored(app)


def test_verification_mail_in_english_with_minutes(mail_app):
    app = mail_app(verification=True, **{"vexpenses.verify_token_minutes": "90"})
    register(app, headers={"Accept-Language": "en"}, status=201)
    [verify] = [m for m in app.sent() if "/verify-email?" in m.text]
    assert verify["Subject"] == "Confirm your e-mail address for vexpenses"
    assert f"Hello {NAME}," in verify.text and 'lang="en"' in verify.html
    assert "valid for 90 minutes" in verify.text and "valid for 90 minutes" in verify.html


def test_resend_sends_a_new_link(mail_app):
    app = mail_app(verification=True)
    register(app, status=201)
    first = only_link(next(m for m in app.sent() if "/verify-email?" in m.text), "/verify")
    token = login(app).json["data"]["token"]
    app.post_json("/api/v1/user/verify-email/resend", {}, headers=bearer(token), status=202)
    again = [m for m in app.sent() if "/verify-email?" in m.text]
    assert len(again) == 2
    second = only_link(again[-1], "/verify")
    assert token_of(second) != token_of(first)
    app.post_json("/api/v1/user/verify-email", {"token": token_of(second)}, status=200)


# -- e-mail change ---------------------------------------------------------------


def change_email(app, new="novo.endereco@example.org", language=None):
    register(app, status=201)
    app.sent()
    token = login(app).json["data"]["token"]
    headers = {**bearer(token), **({"Accept-Language": language} if language else {})}
    app.post_json("/api/v1/user/me/email", {"email": new, "current_password": PASSWORD},
                  headers=headers, status=202)
    messages = app.sent()[1:]  # after the welcome
    [confirm] = [m for m in messages if m.rcpt_tos == [new]]
    [notice] = [m for m in messages if m.rcpt_tos == ["ana@example.com"]]
    assert len(messages) == 2
    return confirm, notice, token


def test_hook_email_change_requested_mail_to_both_addresses(mail_app):
    app = mail_app()
    confirm, notice, token = change_email(app)

    # the new address: the link, and neither the name nor the old address
    assert confirm["Subject"] == "Confirme seu novo e-mail no vexpenses"
    assert confirm["To"].addresses[0].display_name == ""
    for part in (confirm.text, confirm.html):
        assert "novo.endereco@example.org" in part and "60 minutos" in part
        assert NAME not in part and "ana@example.com" not in part
    link = only_link(confirm, "/confirm-email?")
    assert link.startswith("http://localhost/confirm-email?token=")

    # the old address: a notice that names the new one masked, with no link
    # that could undo anything
    assert notice["Subject"] == "Pedido de mudança do e-mail da sua conta no vexpenses"
    assert notice["To"].addresses[0].display_name == NAME
    for part in (notice.text, notice.html):
        assert "n***@example.org" in part and "novo.endereco" not in part
        assert "troque-a agora mesmo e avise o suporte" in part
    for url in links(notice.text) + html_links(notice.html):
        assert not any(route in url for route in TOKEN_ROUTES), url

    # the address changes only with the link
    me = app.get("/api/v1/user/me", headers=bearer(token)).json["data"]
    assert me["email"] == "ana@example.com"
    app.post_json("/api/v1/user/confirm-email", {"token": token_of(link)}, status=200)
    login(app, email="novo.endereco@example.org")

    rows = {row.kind: row for row in deliveries(app)}
    assert rows["confirm_email"].recipient == "novo.endereco@example.org"
    assert rows["email_change_notice"].recipient == "ana@example.com"
    assert token_of(link) not in everything_stored(app)


def test_email_change_mails_in_english(mail_app):
    app = mail_app()
    confirm, notice, _ = change_email(app, language="en-GB")
    assert confirm["Subject"] == "Confirm your new e-mail address for vexpenses"
    assert "valid for 60 minutes" in confirm.text
    assert notice["Subject"] == (
        "A change of e-mail address was requested for your vexpenses account")
    assert "n***@example.org" in notice.text and "change it right away" in notice.html


# -- deletion ------------------------------------------------------------------------


def delete_me(app, token, status=200):
    return app.delete_json("/api/v1/user/me", {"current_password": PASSWORD},
                           headers=bearer(token), status=status)


def test_hook_user_deleted_mail_leaves_no_trace_of_the_address(mail_app):
    app = mail_app(verification=True)
    register(app, status=201)
    token = login(app).json["data"]["token"]
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    app.post_json("/api/v1/user/me/email",
                  {"email": "outro@example.org", "current_password": PASSWORD},
                  headers=bearer(token), status=202)
    assert len(app.sent()) == 5  # welcome, verify, reset, confirm, notice
    assert "ana@example.com" in everything_stored(app)

    delete_me(app, token)
    goodbye = app.sent()[-1]
    assert goodbye.rcpt_tos == ["ana@example.com"]
    assert goodbye["To"].addresses[0].display_name == NAME
    assert goodbye["Subject"] == "Sua conta no vexpenses foi excluída"
    assert "Como você pediu, excluímos" in goodbye.text
    assert "Como você pediu, excluímos" in goodbye.html

    # every earlier row went with the account; the goodbye's row keeps nobody
    [row] = deliveries(app)
    assert (row.kind, row.user_id, row.recipient, row.status) == (
        "account_deleted", None, ERASED, "sent")
    stored = everything_stored(app)
    for trace in ("ana@example.com", "outro@example.org", "Conceição", NAME):
        assert trace not in stored
    # an admin still sees that it was sent
    _, admin = make_user(app.registry, email="root@example.com", is_admin=True)
    listed = app.get("/api/v1/mailer/deliveries", headers=bearer(admin)).json["data"]["data"]
    assert [(d["kind"], d["recipient"]) for d in listed] == [("account_deleted", ERASED)]


def test_the_goodbye_says_when_an_admin_deleted_the_account(mail_app):
    app = mail_app()
    user_id, _ = make_user(app.registry, email="ana@example.com", name=NAME)
    _, admin = make_user(app.registry, email="root@example.com", is_admin=True)
    app.delete(f"/api/v1/user/{user_id}", headers={**bearer(admin), "Accept-Language": "en"},
               status=200)
    [goodbye] = app.sent()
    assert goodbye.rcpt_tos == ["ana@example.com"]
    assert goodbye["Subject"] == "Your vexpenses account was deleted"
    assert "An administrator deleted your vexpenses account" in goodbye.text
    assert "An administrator deleted your vexpenses account" in goodbye.html
    assert "ana@example.com" not in everything_stored(app)


def test_a_refused_goodbye_keeps_no_address_either(mail_app):
    app = mail_app()
    user_id, token = make_user(app.registry, email="ana@example.com", password=PASSWORD,
                               name=NAME)
    app.sink.fail_next("550 5.1.1 <ana@example.com>: no such user")
    delete_me(app, token)
    assert app.sent() == []
    [row] = deliveries(app)
    assert (row.kind, row.user_id, row.recipient, row.status) == (
        "account_deleted", None, ERASED, "failed")
    assert row.last_error == "550 5.1.1 <***>: no such user"
    assert app.failures == [{"message_id": row.id, "to": ERASED, "kind": "account_deleted",
                             "error": row.last_error}]
    assert "ana@example.com" not in everything_stored(app)


def test_hook_erase_user_mail_keeps_other_peoples_rows(mail_app):
    app = mail_app()
    register(app, status=201)
    register(app, name="Bia Souza", email="bia@example.com", status=201)
    app.sent()
    token = login(app).json["data"]["token"]
    delete_me(app, token)
    app.sent()
    assert [(r.kind, r.recipient) for r in deliveries(app)] == [
        ("welcome", "bia@example.com"), ("account_deleted", ERASED)]


def test_hook_erase_user_mail_takes_rows_to_the_address_and_only_to_it(mail_app):
    app = mail_app()
    _, token = make_user(app.registry, email="jose@example.com", password=PASSWORD)
    session = app.registry.dbsession_factory()
    # rows whose user is gone already, to the address and to another person's
    session.add_all([MailDelivery(kind="welcome", recipient=address, subject="Oi",
                                  status="sent", dedupe_key=f"welcome:{index}")
                     for index, address in enumerate(["jose@example.com",
                                                      "josé@example.com"])])
    session.commit()
    session.close()
    delete_me(app, token)
    app.sent()
    assert [(r.kind, r.recipient) for r in deliveries(app)] == [
        ("welcome", "josé@example.com"), ("account_deleted", ERASED)]


def test_an_aborted_deletion_erases_and_sends_nothing(mail_app):
    app = mail_app()
    register(app, status=201)
    app.sent()
    token = login(app).json["data"]["token"]
    app.delete_json("/api/v1/user/me", {"current_password": "wrong password"},
                    headers=bearer(token), status=422)
    assert len(app.sent()) == 1
    assert [r.recipient for r in deliveries(app)] == ["ana@example.com"]


@pytest.fixture
def redis_app(mail_app, redis_url):
    return mail_app(**{"vexpenses.redis_url": redis_url})


def test_the_goodbye_through_a_real_worker_leaves_no_trace(redis_app, tmp_path):
    """With the Redis broker the task crosses the outbox table and Redis; the
    address travels sealed, and the outbox row goes once the task is sent."""
    app = redis_app
    _, token = make_user(app.registry, email="ana@example.com", password=PASSWORD, name=NAME)
    env = {"VEXPENSES_MAILER_BACKEND": "smtp",
           "VEXPENSES_SMTP_URL": f"smtp://127.0.0.1:{app.sink.port}",
           "VEXPENSES_MAIL_FROM": "Equipe vexpenses <no-reply@vexpenses.test>"}
    with run_workers(app.registry.settings, tmp_path, count=1, **env):
        delete_me(app, token)
        assert app.sink.wait_for(1, timeout=30), "the worker did not deliver"
        assert wait_for(lambda: [r.status for r in deliveries(app)] == ["sent"], 10)
    [goodbye] = app.sink.messages
    assert goodbye.rcpt_tos == ["ana@example.com"]
    stored = everything_stored(app)
    assert "task_outbox: " not in stored
    assert "ana@example.com" not in stored and "Conceição" not in stored
    assert "ana@example.com" not in (tmp_path / "worker.log").read_text()
