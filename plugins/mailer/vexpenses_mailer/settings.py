"""The mailer's settings: ``vexpenses.mailer.*`` in the ini, each with an env var.

As in the core, an environment variable that is set (even to an empty
string) wins over the ini file, which wins over the default here.
"""

import dataclasses
import ipaddress
import os
import re
from email.headerregistry import Address
from urllib.parse import parse_qsl, unquote, urlsplit

from pyramid.settings import asbool, aslist

from vexpenses_core.settings import ConfigurationError

#: setting name -> environment variable
ENV_SETTINGS = {
    "vexpenses.mailer.backend": "VEXPENSES_MAILER_BACKEND",
    "vexpenses.mailer.smtp_url": "VEXPENSES_SMTP_URL",
    "vexpenses.mailer.mail_from": "VEXPENSES_MAIL_FROM",
    "vexpenses.mailer.file_dir": "VEXPENSES_MAILER_FILE_DIR",
    "vexpenses.mailer.language": "VEXPENSES_MAILER_LANGUAGE",
    "vexpenses.mailer.template_dirs": "VEXPENSES_MAILER_TEMPLATE_DIRS",
    "vexpenses.mailer.app_url": "VEXPENSES_MAILER_APP_URL",
    "vexpenses.mailer.invitations": "VEXPENSES_MAILER_INVITATIONS",
    "vexpenses.mailer.invitation_days": "VEXPENSES_MAILER_INVITATION_DAYS",
    "vexpenses.mailer.rate_limit": "VEXPENSES_MAILER_RATE_LIMIT",
    "vexpenses.mailer.batch_size": "VEXPENSES_MAILER_BATCH_SIZE",
    "vexpenses.mailer.retry_attempts": "VEXPENSES_MAILER_RETRY_ATTEMPTS",
    "vexpenses.mailer.retry_seconds": "VEXPENSES_MAILER_RETRY_SECONDS",
    "vexpenses.mailer.smtp_timeout": "VEXPENSES_MAILER_SMTP_TIMEOUT",
}

DEFAULTS = {
    "vexpenses.mailer.backend": "",  # smtp when an SMTP URL is set, else file
    "vexpenses.mailer.smtp_url": "",
    "vexpenses.mailer.mail_from": "",
    "vexpenses.mailer.file_dir": "",  # <upload_dir>/../mail
    "vexpenses.mailer.language": "pt_BR",
    "vexpenses.mailer.template_dirs": "",
    "vexpenses.mailer.app_url": "",  # vexpenses.base_url
    "vexpenses.mailer.invitations": "true",
    "vexpenses.mailer.invitation_days": "7",
    "vexpenses.mailer.rate_limit": "0",
    "vexpenses.mailer.batch_size": "200",
    "vexpenses.mailer.retry_attempts": "5",
    "vexpenses.mailer.retry_seconds": "2",
    "vexpenses.mailer.smtp_timeout": "30",
}

BACKENDS = ("smtp", "file", "console")
DEVELOPMENT_FROM = "vexpenses <no-reply@localhost>"
SMTP_OPTIONS = ("starttls", "timeout", "cafile")


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


def resolve(settings, environ=None):
    """``vexpenses.mailer.*`` with defaults and env overrides, as strings."""
    environ = os.environ if environ is None else environ
    result = {name: settings.get(name, default) for name, default in DEFAULTS.items()}
    for name, var in ENV_SETTINGS.items():
        if var in environ:
            result[name] = environ[var]
    return result


def load_settings(settings, environ=None):
    """Parse and check the mailer's settings; a wrong one stops start-up."""
    raw = resolve(settings, environ)
    production = settings.get("vexpenses.env") == "production"
    smtp_url = raw["vexpenses.mailer.smtp_url"].strip()
    timeout = _number(raw, "smtp_timeout", minimum=0.1)
    smtp = parse_smtp_url(smtp_url, timeout) if smtp_url else None

    backend = raw["vexpenses.mailer.backend"].strip().lower()
    if not backend:
        if smtp is None and production:
            raise ConfigurationError(
                "the mailer has no SMTP server in production: set VEXPENSES_SMTP_URL "
                "(e.g. smtp://user:pass@smtp.example.com:587?starttls=true), or choose "
                "vexpenses.mailer.backend = file explicitly"
            )
        backend = "smtp" if smtp is not None else "file"
    if backend not in BACKENDS:
        raise ConfigurationError(
            f"vexpenses.mailer.backend (VEXPENSES_MAILER_BACKEND) must be one of "
            f"{', '.join(BACKENDS)}, not {backend!r}"
        )
    if backend == "smtp" and smtp is None:
        raise ConfigurationError(
            "vexpenses.mailer.backend is smtp but no server is set: set VEXPENSES_SMTP_URL"
        )
    if backend == "console" and production:
        # It prints reset links to the process output, which ends up in logs.
        raise ConfigurationError("vexpenses.mailer.backend = console is refused in production")

    mail_from = raw["vexpenses.mailer.mail_from"].strip()
    if not mail_from:
        if production:
            raise ConfigurationError(
                "VEXPENSES_MAIL_FROM is not set: the sender of every e-mail, "
                "e.g. 'vexpenses <no-reply@example.com>'"
            )
        mail_from = DEVELOPMENT_FROM

    file_dir = raw["vexpenses.mailer.file_dir"].strip() or os.path.join(
        os.path.dirname(os.path.normpath(settings.get("vexpenses.upload_dir", "var/uploads"))),
        "mail",
    )
    template_dirs = tuple(aslist(raw["vexpenses.mailer.template_dirs"]))
    for folder in template_dirs:
        if not os.path.isdir(folder):
            raise ConfigurationError(
                f"vexpenses.mailer.template_dirs: {folder!r} is not a folder"
            )
    language = raw["vexpenses.mailer.language"].strip()
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
        raise ConfigurationError(
            f"vexpenses.mailer.language must be a language such as pt_BR or en, "
            f"not {language!r}"
        )
    app_url = (raw["vexpenses.mailer.app_url"].strip()
               or settings.get("vexpenses.base_url", "http://localhost:6543")).rstrip("/")

    return MailerSettings(
        backend=backend,
        smtp=smtp,
        mail_from=parse_mail_from(mail_from),
        file_dir=file_dir,
        language=language,
        template_dirs=template_dirs,
        app_url=app_url,
        invitations=asbool(raw["vexpenses.mailer.invitations"]),
        invitation_days=int(_number(raw, "invitation_days", minimum=1, whole=True)),
        rate_limit=_number(raw, "rate_limit", minimum=0),
        batch_size=int(_number(raw, "batch_size", minimum=1, whole=True)),
        retry_attempts=int(_number(raw, "retry_attempts", minimum=1, whole=True)),
        retry_seconds=_number(raw, "retry_seconds", minimum=0),
    )


def _number(raw, short, minimum, whole=False):
    name = f"vexpenses.mailer.{short}"
    value = raw[name]
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or number < minimum or number != number:  # NaN
        kind = "whole number" if whole else "number"
        raise ConfigurationError(
            f"{name} ({ENV_SETTINGS[name]}) must be a {kind} of at least {minimum}, "
            f"not {value!r}"
        )
    return number


def parse_mail_from(value):
    """``Name <addr>`` or a bare address, as an :class:`Address`."""
    from email.headerregistry import Address, HeaderRegistry

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
