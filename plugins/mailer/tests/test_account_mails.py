"""The core's accounts events, through the real API, to a real SMTP server."""

import logging
import urllib.parse

from sqlalchemy import select
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.services import delivery_dict
from vexpenses_mailer.testing import PASSWORD, html_links, links, register

from vexpenses_core import hookimpl

NAME = "Conceição Ãraújo"


def deliveries(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
    finally:
        session.close()


def only_link(message, prefix):
    """The one link starting with ``prefix``, the same in both parts."""
    text = [url for url in links(message.text) if url.startswith(prefix)]
    html = [url for url in html_links(message.html) if url.startswith(prefix)]
    assert len(text) == 1 and html == text, (text, html)
    return text[0]


def test_welcome_after_register(mail_app):
    app = mail_app(**{"vexpenses.mailer.app_url": "https://app.vexpenses.test/"})
    user_id = register(app, status=201).json["data"]["id"]
    [message] = app.sent()

    assert message.rcpt_tos == ["ana@example.com"]
    assert message.mail_from == "no-reply@vexpenses.test"
    assert message["From"].addresses[0].display_name == "Equipe vexpenses"
    assert message["To"].addresses[0].display_name == NAME
    assert message["To"].addresses[0].addr_spec == "ana@example.com"
    # Fixed text: anyone can register any address, so the subject carries
    # nothing the registrant chose (the name is in the greeting only).
    assert message["Subject"] == "Bem-vindo(a) ao vexpenses"
    # on the wire, headers are 7-bit: the accented name is RFC 2047 encoded
    raw_headers = message.raw.split(b"\r\n\r\n")[0]
    assert NAME.encode() not in raw_headers and b"=?utf-8?" in raw_headers
    raw_headers.decode("ascii")
    assert message.message.get_content_type() == "multipart/alternative"
    assert f"Olá, {NAME}!" in message.text
    assert f"Olá, {NAME}!" in message.html
    assert only_link(message, "https://") == "https://app.vexpenses.test"

    [row] = deliveries(app)
    assert (row.kind, row.user_id, row.recipient, row.status, row.attempts) == (
        "welcome", user_id, "ana@example.com", "sent", 1)
    assert row.subject == message["Subject"] and row.sent_at is not None
    assert row.message_id == message["Message-ID"]


def test_english_when_the_client_asks_for_it(mail_app):
    app = mail_app()
    register(app, headers={"Accept-Language": "en-US,en;q=0.9,pt;q=0.5"}, status=201)
    [message] = app.sent()
    assert message["Subject"] == "Welcome to vexpenses"
    assert f"Hello {NAME}," in message.text
    assert 'lang="en"' in message.html


def test_reset_link_works_and_password_changed_notice(mail_app):
    app = mail_app()
    register(app, status=201)
    app.sent()  # the welcome e-mail first: tasks run side by side
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"}, status=200)
    welcome, reset = app.sent()
    assert reset.rcpt_tos == ["ana@example.com"]
    assert reset["Subject"] == "Redefinição de senha do vexpenses"
    assert "60 minutos" in reset.text
    link = only_link(reset, "http://localhost/reset-password?")

    # the link opens the reset page, and its token sets the password
    parsed = urllib.parse.urlsplit(link)
    page = app.get(f"{parsed.path}?{parsed.query}", status=200)
    assert page.content_type == "text/html"
    query = dict(urllib.parse.parse_qsl(parsed.query))
    assert query["email"] == "ana@example.com"
    new = "a brand new password"
    app.post_json("/api/v1/user/recover-password",
                  {**query, "password": new, "password_confirmation": new}, status=200)
    app.post_json("/api/v1/user/authenticate",
                  {"email": "ana@example.com", "password": new}, status=201)

    notice = app.sent()[-1]
    assert notice["Subject"] == "Sua senha do vexpenses foi alterada"
    assert notice.rcpt_tos == ["ana@example.com"]
    assert "acabou de ser alterada" in notice.text and "acabou de ser alterada" in notice.html
    assert [row.kind for row in deliveries(app)] == ["welcome", "reset", "password_changed"]


def test_password_changed_counts_ended_sessions(mail_app):
    app = mail_app(**{"vexpenses.ratelimit.enabled": "false"})
    register(app, status=201)
    app.sent()  # the welcome e-mail first: tasks run side by side
    for _ in range(2):
        app.post_json("/api/v1/user/authenticate",
                      {"email": "ana@example.com", "password": PASSWORD}, status=201)
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    link = only_link(app.sent()[-1], "http://localhost/reset-password?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    app.post_json("/api/v1/user/recover-password",
                  {**query, "password": "x" * 12, "password_confirmation": "x" * 12})
    notice = app.sent()[-1]
    assert "encerramos 2 sessões" in notice.text


def test_the_reset_link_is_never_logged(mail_app, caplog):
    caplog.set_level(logging.DEBUG)
    app = mail_app()
    register(app, status=201)
    app.sent()  # the welcome e-mail first: tasks run side by side
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    reset = app.sent()[-1]
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
        only_link(reset, "http://localhost/")).query))["token"]
    assert caplog.records  # something was logged, at every level
    for record in caplog.records:
        assert token not in record.getMessage()
    # nor stored: only the subject and the recipient are kept
    for row in deliveries(app):
        assert token not in str(delivery_dict(row))


def test_unknown_email_gets_nothing(mail_app):
    app = mail_app()
    app.post_json("/api/v1/user/forgot-password", {"email": "nobody@example.com"}, status=200)
    assert app.sent() == []
    assert deliveries(app) == []


def test_an_aborted_request_sends_nothing(mail_app):
    app = mail_app()

    class FailAfterTheMailer:
        @hookimpl(trylast=True)  # runs after the mailer queued its task
        def vexpenses_user_registered(self, request, user):
            raise RuntimeError("something failed later in the request")

    app.registry.pm.register(FailAfterTheMailer(), name="fail-after")
    res = register(app, status=500)
    assert res.json["status"] is False
    assert app.sent() == []
    assert deliveries(app) == []
    # a failed validation sends nothing either
    app.registry.pm.unregister(name="fail-after")
    register(app, status=201)
    register(app, status=422)  # the e-mail is taken
    assert len(app.sent()) == 1


def test_a_registration_does_not_wait_for_the_mail(mail_app):
    """The request answers even while the SMTP server keeps failing."""
    app = mail_app(**{"vexpenses.mailer.retry_seconds": "0.5"})
    app.sink.fail_next("421 4.3.0 busy")
    import time

    started = time.monotonic()
    register(app, status=201)
    assert time.monotonic() - started < 0.5
    assert len(app.sent()) == 1
