"""Internationalised addresses (issue 9, class 2), against real SMTP servers: one
that offers SMTPUTF8 and one that does not; with the real Redis behind the rate
limits, on SQLite and MariaDB."""

import email
import email.policy
import io
import urllib.parse

import pytest
from sqlalchemy import select
from vexpenses_mailer.backends import ConsoleMailer, FileMailer, PermanentError
from vexpenses_mailer.messages import build_message, recipient
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.settings import parse_mail_from
from vexpenses_mailer.testing import PASSWORD, html_links, links, register

NEW = "uma senha bem nova"
SENDER = parse_mail_from("Equipe vexpenses <no-reply@example.com>")

# (address as the user types it, as stored, as it travels: envelope and To)
ADDRESSES = [
    ("böb@example.com", "böb@example.com", "böb@example.com"),
    ("Böb@Bücher.de", "böb@bücher.de", "böb@bücher.de"),
    ("用户@例子.广告", "用户@例子.广告", "用户@例子.广告"),
    # only the domain is not ASCII: it travels in IDNA form, so no SMTPUTF8
    ("bob@bücher.de", "bob@bücher.de", "bob@xn--bcher-kva.de"),
    ("anna@straße.de", "anna@straße.de", "anna@xn--strae-oqa.de"),  # IDNA 2008: not strasse
]


@pytest.fixture
def make_app(mail_app, redis_url):
    def make(server=None):
        # Real Redis for the rate limits keyed on the address; tasks in process.
        return mail_app(server, **{"vexpenses.redis_url": redis_url,
                                   "vexpenses.tasks.broker": "inprocess"})

    return make


def deliveries(app):
    session = app.registry.dbsession_factory()
    try:
        return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
    finally:
        session.close()


def login(app, email, password, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": email, "password": password}, status=status)


def reset_link(message):
    [link] = [url for url in links(message.text) if "/reset-password?" in url]
    assert html_links(message.html) == [link]
    return link


@pytest.mark.parametrize("typed, stored, wire", ADDRESSES)
def test_reset_by_email_end_to_end_over_smtputf8(make_app, utf8_sink, typed, stored, wire):
    app = make_app(utf8_sink)
    user = register(app, name="Böb Müller", email=typed, status=201).json["data"]
    assert user["email"] == stored
    app.sent()  # the welcome first: in-process tasks run in a pool, in any order
    login(app, typed, PASSWORD)
    app.post_json("/api/v1/user/forgot-password", {"email": typed}, status=200)

    welcome, reset = app.sent()
    for message in (welcome, reset):
        assert message.rcpt_tos == [wire]
        assert message["To"].addresses[0].addr_spec == wire
        assert message["To"].addresses[0].display_name == "Böb Müller"
        # SMTPUTF8 exactly when the local part needs it
        assert message.smtputf8 == (not wire.isascii())
        assert message.raw.isascii() == wire.isascii()

    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(reset_link(reset)).query))
    assert query["email"] == stored
    app.post_json("/api/v1/user/recover-password", {
        "token": query["token"], "email": query["email"], "password": NEW,
        "password_confirmation": NEW}, status=200)
    login(app, typed, NEW)
    login(app, typed, PASSWORD, status=401)

    assert [m["To"].addresses[0].addr_spec for m in app.sent()] == [wire] * 3
    rows = deliveries(app)
    assert [(r.kind, r.status, r.recipient, r.attempts) for r in rows] == [
        ("welcome", "sent", stored, 1), ("reset", "sent", stored, 1),
        ("password_changed", "sent", stored, 1)]


def test_an_idn_domain_reaches_a_server_without_smtputf8(make_app, sink):
    app = make_app()
    register(app, email="bob@bücher.de", status=201)
    app.sent()  # the welcome first: in-process tasks run in a pool, in any order
    app.post_json("/api/v1/user/forgot-password", {"email": "bob@bücher.de"}, status=200)
    welcome, reset = app.sent()
    assert reset.rcpt_tos == ["bob@xn--bcher-kva.de"] and not reset.smtputf8
    assert reset["To"].addresses[0].addr_spec == "bob@xn--bcher-kva.de"
    assert [r.status for r in deliveries(app)] == ["sent", "sent"]


@pytest.mark.parametrize("address", ["böb@example.com", "用户@例子.广告"])
def test_without_smtputf8_a_non_ascii_address_is_a_permanent_failure(make_app, sink, address):
    app = make_app()
    register(app, email=address, status=201)
    app.sent()  # the welcome first: in-process tasks run in a pool, in any order
    login(app, address, PASSWORD)
    known = app.post_json("/api/v1/user/forgot-password", {"email": address}, status=200)
    unknown = app.post_json("/api/v1/user/forgot-password", {"email": "nobody@example.com"},
                            status=200)
    assert known.json == unknown.json  # the answer tells nothing

    assert app.sent() == []
    assert sink.attempts == 0  # not even a DATA: refused before MAIL FROM, and never retried
    reason = (f"the server does not support SMTPUTF8, which the non-ASCII address "
              f"{address} needs")
    rows = deliveries(app)
    assert [(r.kind, r.status, r.attempts, r.last_error) for r in rows] == [
        ("welcome", "failed", 1, reason), ("reset", "failed", 1, reason)]
    assert [(f["kind"], f["to"], f["error"]) for f in app.failures] == [
        ("welcome", address, reason), ("reset", address, reason)]


# -- the other backends -----------------------------------------------------------


def message_to(address, name="Böb Müller"):
    to = recipient(name, address)
    return to, build_message(SENDER, to, "Olá", "Olá, https://x.test/r", "<p>Olá</p>")


@pytest.mark.parametrize("typed, stored, wire", ADDRESSES)
def test_file_backend_writes_the_address_readably(tmp_path, typed, stored, wire):
    to, message = message_to(stored)
    mailer = FileMailer(str(tmp_path)).open()
    path = mailer.send(message, SENDER.addr_spec, to.addr_spec)
    with open(path, "rb") as f:
        raw = f.read()
    assert f"Böb Müller <{wire}>".encode() in raw or wire.isascii()
    parsed = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert parsed["To"].addresses[0].addr_spec == wire
    assert parsed["To"].addresses[0].display_name == "Böb Müller"
    assert parsed["Subject"] == "Olá"


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1", "ascii"])
@pytest.mark.parametrize("typed, stored, wire", ADDRESSES)
def test_console_backend_prints_any_address_on_any_terminal(encoding, typed, stored, wire):
    to, message = message_to(stored)
    out = io.BytesIO()
    stream = io.TextIOWrapper(out, encoding=encoding)
    ConsoleMailer(stream).open().send(message, SENDER.addr_spec, to.addr_spec)
    printed = out.getvalue().decode(encoding)
    expected = f"To: Böb Müller <{wire}>"
    expected = expected.encode(encoding, "backslashreplace").decode(encoding)
    assert f"Envelope-To: {wire}".encode(encoding, "backslashreplace").decode(encoding) in printed
    assert expected in printed


# Stored addresses the API would refuse today but an older row may hold; none
# may crash the task: each is a recorded permanent failure.
HOSTILE = [
    "bob@-bücher.de",
    "bob@bücher-.de",
    "bob@" + "ü" * 64 + ".de",        # a label longer than 63 octets once encoded
    "bob@bü\u200dcher.de",            # a joiner where IDNA forbids it
    "bob@b\U0001f600.de",               # an emoji domain: not IDNA 2008
    "böb@",
    "@bücher.de",
    "böb\r\nBcc: x@evil.test@example.com",
    "böb@example.com\u2028",
]


@pytest.mark.parametrize("address", HOSTILE)
def test_a_hostile_stored_address_is_refused_for_good(address):
    with pytest.raises(PermanentError, match="^invalid recipient address$"):
        recipient("Böb", address)


@pytest.mark.parametrize("setting, sender", [
    ("Equipe <no-reply@Bücher.de>", "no-reply@xn--bcher-kva.de"),
    ("no-reply@straße.de", "no-reply@xn--strae-oqa.de"),
])
def test_a_sender_with_an_idn_domain_goes_out_in_ascii(setting, sender):
    # Before: every message failed to build (UnicodeEncodeError in the
    # Message-ID), and the task crashed.
    mail_from = parse_mail_from(setting)
    assert mail_from.addr_spec == sender
    message = build_message(mail_from, recipient("Böb", "bob@bücher.de"), "Olá", "x", "<p>x</p>")
    assert message["Message-ID"].endswith(sender.split("@")[1] + ">")
    assert message["From"].addresses[0].addr_spec == sender
    message.as_bytes(policy=email.policy.SMTP).decode("ascii")


def test_a_sender_with_a_bad_idn_domain_stops_start_up():
    from vexpenses_core.settings import ConfigurationError

    with pytest.raises(ConfigurationError, match="VEXPENSES_MAIL_FROM"):
        parse_mail_from("Equipe <no-reply@-bücher.de>")
