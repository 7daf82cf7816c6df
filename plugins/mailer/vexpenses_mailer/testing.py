"""A real SMTP server for tests and benchmarks: aiosmtpd in a thread.

Needs the ``test`` extra (aiosmtpd). ``SMTPSink`` keeps every accepted
message, parsed, and answers with whatever ``fail_next`` queued: an SMTP
reply such as ``"421 4.3.0 try again later"`` or ``"550 5.1.1 no such user"``,
or ``"drop"`` to close the connection without a word.
"""

import email
import email.policy
import logging
import socket
import threading

DEFAULT_PASSWORD = "s3cret pässword"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Received:
    """One accepted message: envelope and parsed content."""

    def __init__(self, envelope):
        self.mail_from = envelope.mail_from
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.smtputf8 = bool(envelope.smtp_utf8)  # MAIL FROM came with SMTPUTF8
        self.raw = envelope.original_content or envelope.content
        if self.smtputf8:
            # Parsed as text: from bytes, the email package turns a UTF-8
            # address into surrogates.
            self.message = email.message_from_string(self.raw.decode("utf-8"),
                                                     policy=email.policy.default)
        else:
            self.message = email.message_from_bytes(self.raw, policy=email.policy.default)

    def part(self, subtype):
        body = self.message.get_body(preferencelist=(subtype,))
        return body.get_content() if body is not None else None

    @property
    def text(self):
        return self.part("plain")

    @property
    def html(self):
        return self.part("html")

    def __getitem__(self, header):
        return self.message[header]


class Handler:
    def __init__(self, keep=True):
        self.keep = keep
        self.messages = []
        self.count = 0
        self.attempts = 0
        self.script = []  # replies for the next DATA commands, in order
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.attempts += 1
            action = self.script.pop(0) if self.script else None
        if action == "drop":
            server.transport.close()
            return "421 4.4.2 connection dropped"
        if action:
            return action
        received = Received(envelope) if self.keep else None
        with self.arrived:
            self.count += 1
            if received is not None:
                self.messages.append(received)
            self.arrived.notify_all()
        return "250 2.0.0 OK queued"


class SMTPSink:
    """``with SMTPSink() as sink:`` an SMTP server on 127.0.0.1:``sink.port``.

    ``tls_context`` turns on STARTTLS (or implicit TLS with ``implicit_tls``);
    ``auth`` requires a login with ``(username, password)`` (after STARTTLS:
    aiosmtpd does not count implicit TLS as TLS for AUTH); ``smtputf8``
    offers SMTPUTF8 (RFC 6531), off by default as in aiosmtpd.
    """

    def __init__(self, keep=True, tls_context=None, implicit_tls=False, auth=None,
                 smtputf8=False):
        from aiosmtpd.controller import Controller

        self.handler = Handler(keep)
        self.port = free_port()
        self.logins = []
        kwargs = {"enable_SMTPUTF8": smtputf8}
        if auth is not None:
            kwargs.update(authenticator=self._authenticator(auth), auth_required=True,
                          auth_require_tls=tls_context is not None)
        if tls_context is not None and implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     server_hostname="sink.test", **kwargs)

    def _authenticator(self, credentials):
        from aiosmtpd.smtp import AuthResult

        def check(server, session, envelope, mechanism, auth_data):
            ok = (auth_data.login.decode(), auth_data.password.decode()) == credentials
            self.logins.append((mechanism, auth_data.login.decode(), ok))
            return AuthResult(success=ok, handled=False)  # unhandled: aiosmtpd answers 535

        return check

    def start(self):
        # aiosmtpd logs every line it reads, bodies and their links included;
        # that is the test server's log, not the app's, and only noise here.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)

    @property
    def count(self):
        return self.handler.count

    @property
    def attempts(self):
        return self.handler.attempts

    def fail_next(self, *replies):
        with self.handler.lock:
            self.handler.script.extend(replies)

    def wait_for(self, count, timeout=10):
        """Wait until ``count`` messages were accepted; returns whether they were."""
        with self.handler.arrived:
            return self.handler.arrived.wait_for(lambda: self.handler.count >= count, timeout)

    def clear(self):
        with self.handler.lock:
            self.handler.messages.clear()
            self.handler.count = 0
            self.handler.attempts = 0
            self.handler.script.clear()


# -- helpers for the plugin's tests ---------------------------------------------

PASSWORD = "a good password"


def catch_failures(registry):
    """Register a ``vexpenses_mail_failed`` listener; returns the list it fills."""
    from vexpenses_core import hookimpl

    failures = []

    class Catcher:
        @hookimpl
        def vexpenses_mail_failed(self, request, message_id, to, kind, error):
            failures.append({"message_id": message_id, "to": to, "kind": kind,
                             "error": error})

    registry.pm.register(Catcher(), name="failure-catcher")
    return failures


def register(app, name="Conceição Ãraújo", email="ana@example.com", password=PASSWORD,
             **kwargs):
    body = {"name": name, "email": email, "password": password,
            "password_confirmation": password, "birth_date": "1990-01-01"}
    return app.post_json("/api/v1/user/register", body, **kwargs)


def links(text):
    """Every http(s) URL in a text part."""
    import re

    return re.findall(r"https?://[^\s<>\"']+", text)


def html_links(html):
    """Every href in an HTML part, unescaped as a browser would."""
    from html.parser import HTMLParser

    found = []

    class Parser(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag == "a":
                found.extend(value for name, value in attrs if name == "href")

    Parser().feed(html)
    return found
