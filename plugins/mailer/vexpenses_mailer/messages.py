"""Rendering the templates and building safe MIME messages.

Templates are Jinja2: ``<language>/<kind>.subject.txt``, ``<kind>.txt`` and
``<kind>.html``, looked up first in ``vexpenses.mailer.template_dirs`` and
then in the package's own ``templates/``, so a host app overrides one file at
a time. HTML templates are autoescaped; the plain-text ones are not (they are
not HTML), and a subject is folded to one line.

Jinja2 rather than string.Template: its autoescaping is the well-tested kind,
and ``{% extends %}`` with a search path gives overriding for free.
"""

import email.utils
import re
from email.headerregistry import Address
from email.message import EmailMessage

import idna
from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from vexpenses_core.db import utcnow
from vexpenses_core.i18n import negotiate
from vexpenses_core.settings import ConfigurationError

from .backends import PermanentError

KINDS = ("welcome", "reset", "password_changed", "invitation", "import_finished",
         "verify_email", "confirm_email", "email_change_notice", "account_deleted")
PARTS = ("subject.txt", "txt", "html")

# Anything that could end a header line, and other control characters.
CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


def one_line(value, limit=200):
    """Text safe for a header: control characters (CR, LF...) become spaces, and
    ``=?`` is broken up so no RFC 2047 encoded word can hide a CR/LF.

    (Before Python 3.11.10/3.12.5, the email package decoded an encoded word
    found in a header value, ``=?utf-8?q?=0D=0ABcc:...?=``, and wrote its CR/LF
    out raw: a header injection. CVE-2024-6923.)
    """
    text = " ".join(CONTROL.sub(" ", str(value or "")).split())
    return text.replace("=?", "= ?")[:limit]


class Templates:
    def __init__(self, template_dirs=(), default_language="pt_BR"):
        loaders = [FileSystemLoader(list(template_dirs))] if template_dirs else []
        loaders.append(PackageLoader("vexpenses_mailer", "templates"))
        self.env = Environment(
            loader=ChoiceLoader(loaders),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False,
                                         default_for_string=False),
            undefined=StrictUndefined,  # a typo in a template fails loudly
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.languages = self._find_languages()
        self.default_language = default_language
        missing = [f"{default_language}/{kind}.{part}" for kind in KINDS for part in PARTS
                   if not self._exists(f"{default_language}/{kind}.{part}")]
        if missing:
            raise ConfigurationError(
                f"vexpenses.mailer.language is {default_language!r} but these templates "
                f"are missing: {', '.join(missing)}"
            )

    def _find_languages(self):
        names = self.env.loader.list_templates()
        return sorted({name.split("/")[0] for name in names
                       if name.endswith("/welcome.txt") and name.count("/") == 1})

    def _exists(self, name):
        try:
            self.env.get_template(name)
            return True
        except TemplateNotFound:
            return False

    def language(self, wanted):
        return wanted if wanted in self.languages else self.default_language

    def render(self, kind, language, context):
        """``(subject, text, html)`` of one message."""
        language = self.language(language)
        context = {**context, "language": language}

        def part(suffix):
            return self.env.get_template(f"{language}/{kind}.{suffix}").render(context)

        return one_line(part("subject.txt"), 255), part("txt"), part("html")

    def pick_language(self, request):
        """The best of our languages for the request's Accept-Language, else the default.

        The same negotiation as the pages' (``vexpenses_core.i18n.negotiate``).
        """
        return negotiate(request, self.languages, self.default_language)


def mask(address):
    """``a***@example.com``: enough for its owner to recognise the address, too
    little for anyone else to learn it (the e-mail change notice shows it)."""
    local, _, domain = str(address).rpartition("@")
    return f"{local[:1]}***@{domain}" if local else "***"


def recipient(name, address):
    """The To address, in the form it travels in; its ``addr_spec`` is the envelope's.

    A name is cleaned; an address holding CR/LF is refused for good. An
    ASCII local part goes out all ASCII, its domain in IDNA form
    (``bob@xn--bcher-kva.de``), so that any server takes it. A non-ASCII
    local part can only travel over SMTPUTF8 (RFC 6531), which takes a
    Unicode domain too, so that address goes as stored.
    """
    if (not isinstance(address, str) or not address or len(address) > 254
            or CONTROL.search(address) or address.count("@") != 1 or " " in address):
        raise PermanentError("invalid recipient address")
    local, _, domain = address.partition("@")
    if not local or not domain:
        raise PermanentError("invalid recipient address")
    try:
        if local.isascii() and not domain.isascii():
            # IDNA 2008, not Python's "idna" codec (2003), which maps straße.de
            # to strasse.de: another domain.
            domain = idna.encode(domain, uts46=True).decode("ascii")
        # username and domain given apart: the email package cannot parse a
        # non-ASCII addr_spec, and would quote all of it as one local part.
        return Address(display_name=one_line(name, 255), username=local, domain=domain)
    except (ValueError, IndexError, TypeError):  # idna.IDNAError is a ValueError
        raise PermanentError("invalid recipient address") from None


def build_message(sender, to, subject, text, html):
    """A multipart/alternative message: plain text first, then HTML.

    Both parts are quoted-printable UTF-8, so the message is 7-bit clean for
    any server; non-ASCII names in headers are RFC 2047 encoded by the
    default policy, which also refuses CR/LF in any header value.
    """
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = one_line(subject, 255)
    message["Date"] = email.utils.format_datetime(utcnow())
    message["Message-ID"] = email.utils.make_msgid(domain=sender.domain or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message
