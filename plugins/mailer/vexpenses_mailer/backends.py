"""Where messages go: an SMTP server, a folder of .eml files, or the console.

Each backend's ``open()`` returns a connection with ``send(message,
sender, recipient)`` and ``close()``. A batch uses one connection; the
delivery loop (``delivery.py``) retries :class:`TransientError` and stops on
:class:`PermanentError`.
"""

import base64
import email.policy
import os
import smtplib
import ssl
import sys
import threading
import uuid

from zope.interface import implementer

from vexpenses_core.db import utcnow

from .interfaces import IMailBackend


class MailError(Exception):
    """A message was not sent. ``str()`` is safe to store and log."""


class TransientError(MailError):
    """Try again later: a 4xx reply, a dropped or refused connection, a timeout."""


class ConnectionFailed(TransientError):
    """The server could not be reached or refused the session (TLS, AUTH, greeting)."""


class PermanentError(MailError):
    """The server refused this message for good: a 5xx reply."""


def _reply(code, text):
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {' '.join(str(text).split())}"[:400]


def classify(exc):
    """Turn an smtplib/socket error about one message into a MailError."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()), (451, "recipient refused"))
        error = _reply(code, text)
        return PermanentError(error) if 500 <= code < 600 else TransientError(error)
    if isinstance(exc, smtplib.SMTPResponseException):
        error = _reply(exc.smtp_code, exc.smtp_error)
        return PermanentError(error) if 500 <= exc.smtp_code < 600 else TransientError(error)
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # e.g. no SMTPUTF8 for this address
        return PermanentError(f"not supported by the server: {exc}"[:400])
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return TransientError("connection closed by the server")
    if isinstance(exc, TimeoutError):
        return TransientError("timed out")
    if isinstance(exc, OSError | smtplib.SMTPException):
        return TransientError(f"{type(exc).__name__}: {exc}"[:400])
    return None


@implementer(IMailBackend)
class SMTPMailer:
    """stdlib smtplib with STARTTLS or implicit TLS, and AUTH when configured."""

    name = "smtp"

    def __init__(self, config, local_hostname=None):
        self.config = config
        self.local_hostname = local_hostname
        self._tls_context = None

    def tls_context(self):
        if self._tls_context is None:
            self._tls_context = ssl.create_default_context(cafile=self.config.cafile)
        return self._tls_context

    def open(self):
        config = self.config
        try:
            if config.tls == "ssl":
                smtp = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout,
                                        local_hostname=self.local_hostname,
                                        context=self.tls_context())
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout,
                                    local_hostname=self.local_hostname)
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectionFailed(
                f"cannot connect to {config.safe_url()}: {classify(exc)}"
            ) from None
        try:
            smtp.ehlo()
            if config.tls == "starttls":
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if config.username:
                _login(smtp, config.username, config.password or "")
        except (OSError, smtplib.SMTPException) as exc:
            _quit(smtp)
            # smtplib's messages hold the server's replies, never our password.
            raise ConnectionFailed(f"{config.safe_url()}: {classify(exc)}") from None
        return SMTPConnection(smtp)


def _login(smtp, username, password):
    """AUTH PLAIN in UTF-8 when offered (smtplib's own encodes ASCII only, so a
    password with 'ç' would fail), else smtplib's login (LOGIN, CRAM-MD5)."""
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    if "PLAIN" in smtp.esmtp_features["auth"].upper().split():
        credentials = b"\0" + username.encode() + b"\0" + password.encode()
        code, reply = smtp.docmd("AUTH", "PLAIN " + base64.b64encode(credentials).decode())
        if code not in (235, 503):  # 503: already authenticated
            raise smtplib.SMTPAuthenticationError(code, reply)
        return
    smtp.login(username, password)


class SMTPConnection:
    def __init__(self, smtp):
        self.smtp = smtp

    def send(self, message, sender, recipient):
        needs_utf8 = [address for address in (recipient, sender) if not address.isascii()]
        if needs_utf8 and not self.smtp.has_extn("smtputf8"):
            # No ASCII form of a non-ASCII local part exists (RFC 6530): this
            # server can never take it, so it is not worth a retry.
            raise PermanentError(
                f"the server does not support SMTPUTF8, which the non-ASCII address "
                f"{needs_utf8[0]} needs"[:400]
            )
        try:
            # Envelope given explicitly: never taken from the headers. With a
            # non-ASCII address, smtplib sends MAIL FROM with SMTPUTF8 and
            # writes the headers in UTF-8.
            self.smtp.send_message(message, from_addr=sender, to_addrs=[recipient])
        except (OSError, smtplib.SMTPException) as exc:
            raise classify(exc) from None

    def close(self):
        _quit(self.smtp)


def _quit(smtp):
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


@implementer(IMailBackend)
class FileMailer:
    """Writes each message to ``<folder>/<timestamp>-<id>.eml``, readable by any mail
    program. The files hold live reset links, so only the owner may read them."""

    name = "file"
    policy = email.policy.default.clone(linesep="\r\n")

    def __init__(self, folder):
        self.folder = folder

    def open(self):
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise ConnectionFailed(f"cannot create {self.folder}: {exc.strerror}") from None
        return self

    def send(self, message, sender, recipient):
        stamp = utcnow().strftime("%Y%m%dT%H%M%S.%f")
        name = f"{stamp}-{uuid.uuid4().hex[:12]}.eml"
        path = os.path.join(self.folder, name)
        # As smtplib does: UTF-8 headers when an address needs them (RFC 6532),
        # else RFC 2047, which cannot carry an address.
        international = not (sender + recipient).isascii()
        policy = self.policy.clone(utf8=True) if international else self.policy
        data = message.as_bytes(policy=policy)
        temporary = os.path.join(self.folder, f".{name}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)  # readers never see half a file
        except OSError as exc:
            raise TransientError(f"cannot write {path}: {exc.strerror}") from None
        return path

    def close(self):
        pass


@implementer(IMailBackend)
class ConsoleMailer:
    """Prints each message's headers and plain-text part to standard output.

    For development only (refused in production): the output holds reset links.
    """

    name = "console"
    _lock = threading.Lock()

    def __init__(self, stream=None):
        self.stream = stream

    def open(self):
        return self

    def send(self, message, sender, recipient):
        text = message.get_body(preferencelist=("plain",))
        lines = ["-" * 72, f"Envelope-From: {sender}", f"Envelope-To: {recipient}"]
        for header in ("From", "To", "Subject", "Date", "Message-ID"):
            lines.append(f"{header}: {message[header]}")
        lines += ["", text.get_content() if text is not None else "", "-" * 72]
        output = "\n".join(lines) + "\n"
        with self._lock:
            stream = self.stream or sys.stdout
            encoding = getattr(stream, "encoding", None)
            if encoding:
                # A terminal in Latin-1 or ASCII must not crash the task on "用户".
                output = output.encode(encoding, "backslashreplace").decode(encoding)
            stream.write(output)
            stream.flush()

    def close(self):
        pass


def make_backend(settings, local_hostname=None):
    if settings.backend == "smtp":
        return SMTPMailer(settings.smtp, local_hostname)
    if settings.backend == "file":
        return FileMailer(settings.file_dir)
    return ConsoleMailer()
