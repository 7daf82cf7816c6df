"""The mailer's settings: ``vexpenses.mailer.*`` in the ini, each with an env var.

As in the core, an environment variable that is set (even to an empty
string) wins over the ini file, which wins over the default here.
"""

import dataclasses
import ipaddress
import os
import re
from email.headerregistry import Address, HeaderRegistry
from urllib.parse import parse_qsl, unquote, urlsplit

from pyramid.settings import asbool, aslist

from vexpenses_core.settings import (
    ConfigurationError,
    PluginSettings,
    Problems,
    Setting,
    number,
    one_of,
)

BACKENDS = ("smtp", "file", "console")
DEVELOPMENT_FROM = "vexpenses <no-reply@localhost>"
SMTP_OPTIONS = ("starttls", "timeout", "cafile")


def _language(raw):
    if not raw:
        return raw  # empty: the core's vexpenses.language
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", raw):
        raise ValueError("must be a language such as pt_BR or en")
    return raw


def _folders(raw):
    folders = tuple(aslist(raw))
    for folder in folders:
        if not os.path.isdir(folder):
            raise ConfigurationError(
                f"{SETTINGS.prefix}template_dirs: {folder!r} is not a folder")
    return folders


SETTINGS = PluginSettings(
    "mailer",
    # empty: smtp when an SMTP URL is set, else file
    Setting("backend", "", one_of("", *BACKENDS, fold=True),
            rule=f"must be one of {', '.join(BACKENDS)}"),
    Setting("smtp_url", "", env="VEXPENSES_SMTP_URL"),
    Setting("mail_from", "", env="VEXPENSES_MAIL_FROM"),
    Setting("file_dir", ""),  # empty: <upload_dir>/../mail
    Setting("language", "", _language),  # empty: vexpenses.language
    Setting("template_dirs", "", _folders),
    Setting("app_url", ""),  # empty: vexpenses.base_url
    Setting("invitations", "true", asbool),
    Setting("invitation_days", "7", number()),
    Setting("rate_limit", "0", number(0, float)),
    Setting("batch_size", "200", number()),
    Setting("retry_attempts", "5", number()),
    Setting("retry_seconds", "2", number(0, float)),
    Setting("smtp_timeout", "30", number(0.1, float)),
)


@dataclasses.dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    tls: str  # "none", "starttls" or "ssl" (implicit TLS, smtps://)
    username: str | None
    password: str | None = dataclasses.field(repr=False)
    timeout: float
    cafile: str | None

    def safe_url(self):
        """The URL without its password, for messages and logs."""
        scheme = "smtps" if self.tls == "ssl" else "smtp"
        user = f"{self.username}:***@" if self.username else ""
        query = "?starttls=true" if self.tls == "starttls" else ""
        return f"{scheme}://{user}{self.host}:{self.port}{query}"


@dataclasses.dataclass(frozen=True)
class MailerSettings:
    backend: str
    smtp: SMTPConfig | None
    mail_from: Address
    file_dir: str
    language: str
    template_dirs: tuple
    app_url: str
    invitations: bool
    invitation_days: int
    rate_limit: float
    batch_size: int
    retry_attempts: int
    retry_seconds: float


def load_settings(settings, environ=None):
    """Parse and check the mailer's settings; wrong ones stop start-up, all named at once."""
    problems = Problems()
    options = SETTINGS.read(settings, environ, problems)
    production = settings.get("vexpenses.env") == "production"
    smtp = None
    smtp_url = options.get("smtp_url")
    if smtp_url and "smtp_timeout" in options:
        with problems.collect():
            smtp = parse_smtp_url(smtp_url, options["smtp_timeout"])

    backend = options.get("backend")
    # A bad backend or SMTP URL has been reported: nothing more to say about them.
    if backend is not None and (smtp is not None or not smtp_url):
        with problems.collect():
            backend = _backend(backend, smtp, production)

    mail_from = None
    if "mail_from" in options:
        with problems.collect():
            mail_from = parse_mail_from(_mail_from(options["mail_from"], production))
    problems.raise_if_any()

    file_dir = options["file_dir"] or os.path.join(
        os.path.dirname(os.path.normpath(settings.get("vexpenses.upload_dir", "var/uploads"))),
        "mail",
    )
    app_url = (options["app_url"]
               or settings.get("vexpenses.base_url", "http://localhost:6543")).rstrip("/")

    return MailerSettings(
        backend=backend,
        smtp=smtp,
        mail_from=mail_from,
        file_dir=file_dir,
        language=options["language"] or settings.get("vexpenses.language", "pt_BR"),
        template_dirs=options["template_dirs"],
        app_url=app_url,
        invitations=options["invitations"],
        invitation_days=options["invitation_days"],
        rate_limit=options["rate_limit"],
        batch_size=options["batch_size"],
        retry_attempts=options["retry_attempts"],
        retry_seconds=options["retry_seconds"],
    )


def _backend(backend, smtp, production):
    if not backend:
        if smtp is None and production:
            raise ConfigurationError(
                "the mailer has no SMTP server in production: set VEXPENSES_SMTP_URL "
                "(e.g. smtp://user:pass@smtp.example.com:587?starttls=true), or choose "
                "vexpenses.mailer.backend = file explicitly"
            )
        backend = "smtp" if smtp is not None else "file"
    if backend == "smtp" and smtp is None:
        raise ConfigurationError(
            "vexpenses.mailer.backend is smtp but no server is set: set VEXPENSES_SMTP_URL"
        )
    if backend == "console" and production:
        # It prints reset links to the process output, which ends up in logs.
        raise ConfigurationError("vexpenses.mailer.backend = console is refused in production")
    return backend


def _mail_from(value, production):
    if not value:
        if production:
            raise ConfigurationError(
                "VEXPENSES_MAIL_FROM is not set: the sender of every e-mail, "
                "e.g. 'vexpenses <no-reply@example.com>'"
            )
        return DEVELOPMENT_FROM
    return value


def parse_mail_from(value):
    """``Name <addr>`` or a bare address, as an :class:`Address`."""
    import idna

    try:
        header = HeaderRegistry()("from", value)
        addresses = header.addresses
        if len(addresses) != 1 or header.defects or "@" not in addresses[0].addr_spec:
            raise ValueError(value)
        address = addresses[0]
        if not address.domain.isascii():
            # In IDNA form (2008, as for recipients), so that the sender, the
            # envelope and the Message-ID stay ASCII for any server.
            domain = idna.encode(address.domain, uts46=True).decode("ascii")
            address = Address(address.display_name, address.username, domain)
        return address
    except (ValueError, IndexError):  # idna.IDNAError is a ValueError
        raise ConfigurationError(
            f"VEXPENSES_MAIL_FROM (vexpenses.mailer.mail_from) must be one address such "
            f"as 'vexpenses <no-reply@example.com>', not {value!r}"
        ) from None


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_smtp_url(url, timeout=30.0):
    """``smtp://[user:pass@]host[:port][?starttls=true&timeout=10&cafile=/ca.pem]``
    or ``smtps://...`` (implicit TLS). The password never appears in an error."""
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        raise ConfigurationError(
            "VEXPENSES_SMTP_URL is not a valid URL such as "
            "smtp://user:pass@smtp.example.com:587?starttls=true"
        ) from None
    if parts.scheme not in ("smtp", "smtps") or not host:
        raise ConfigurationError(
            "VEXPENSES_SMTP_URL must look like smtp://user:pass@host:587?starttls=true "
            "or smtps://user:pass@host:465"
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(SMTP_OPTIONS))
    if unknown:
        raise ConfigurationError(
            f"VEXPENSES_SMTP_URL has unknown options {', '.join(unknown)}; "
            f"known: {', '.join(SMTP_OPTIONS)}"
        )
    starttls = asbool(options.get("starttls", "false"))
    if parts.scheme == "smtps":
        if starttls:
            raise ConfigurationError(
                "VEXPENSES_SMTP_URL: smtps:// is already TLS; drop starttls=true"
            )
        tls, default_port = "ssl", 465
    else:
        tls, default_port = ("starttls", 587) if starttls else ("none", 25)
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
            if not timeout > 0:
                raise ValueError
        except ValueError:
            raise ConfigurationError(
                "VEXPENSES_SMTP_URL: timeout must be a positive number of seconds"
            ) from None
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if username and tls == "none" and not _is_loopback(host):
        raise ConfigurationError(
            "VEXPENSES_SMTP_URL has credentials but no TLS: add ?starttls=true or use "
            "smtps://, so that the password is not sent in clear text"
        )
    cafile = options.get("cafile") or None
    if cafile and not os.path.isfile(cafile):
        raise ConfigurationError(f"VEXPENSES_SMTP_URL: cafile {cafile!r} does not exist")
    return SMTPConfig(
        host=host,
        port=port or default_port,
        tls=tls,
        username=username,
        password=password,
        timeout=timeout,
        cafile=cafile,
    )
