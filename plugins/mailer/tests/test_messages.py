"""Templates, languages, escaping and the MIME messages built from them."""

import email
import email.policy
from email.headerregistry import Address

import pytest
from vexpenses_mailer.backends import PermanentError
from vexpenses_mailer.config import Mailer, UnsealError
from vexpenses_mailer.messages import KINDS, Templates, build_message, one_line, recipient
from vexpenses_mailer.settings import load_settings
from webob import Request

from vexpenses_core.settings import ConfigurationError

CONTEXT = {
    "name": "Zé <b>Conceição</b> & Cia", "email": "ze@example.com",
    "app_url": "https://app.example.com", "reset_url": "https://x.test/r?token=a&email=b",
    "minutes": 60, "sessions_ended": 2, "invite_url": "https://x.test/invite?token=c&email=d",
    "days": 7, "import_id": 5, "status": 2, "succeeded": False,
    "counts": {"total": 3, "processed": 3, "imported": 1, "rejected": 1, "duplicates": 1},
    "invitations": True, "errors_url": "https://x.test/api/v1/user/import-status/5/errors",
    "verify_url": "https://x.test/verify-email?token=e&x=f",
    "confirm_url": "https://x.test/confirm-email?token=g&x=h",
    "new_email": "n***@example.org", "by_admin": False,
}
#: Sent to an address that may be a stranger's (a mistyped new address): no name.
NAMELESS = ("confirm_email",)
SENDER = Address("Equipe vexpenses", addr_spec="no-reply@example.com")


@pytest.fixture(scope="module")
def templates():
    return Templates()


@pytest.mark.parametrize("language", ["pt_BR", "en"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_message_in_both_languages(templates, kind, language):
    subject, text, html = templates.render(kind, language, CONTEXT)
    assert subject and "\n" not in subject
    assert html.startswith("<!DOCTYPE html>")
    assert f'lang="{language.replace("_", "-")}"' in html
    # HTML is escaped, plain text is not (it is not HTML)
    assert "<b>Conceição" not in html
    if kind in NAMELESS:
        assert "Conceição" not in text + html
    else:
        assert "Zé &lt;b&gt;Conceição&lt;/b&gt; &amp; Cia" in html
        assert "Zé <b>Conceição</b> & Cia" in text
    for key in ("reset_url", "invite_url", "errors_url", "verify_url", "confirm_url"):
        if CONTEXT[key].split("?")[0] in text:
            assert CONTEXT[key] in text
            assert CONTEXT[key].replace("&", "&amp;") in html


def test_languages_and_fallback(templates):
    assert templates.languages == ["en", "pt_BR"]
    assert templates.render("welcome", "fr", CONTEXT)[0].startswith("Bem-vindo(a)")


@pytest.mark.parametrize("header, expected", [
    (None, "pt_BR"),
    ("en", "en"),
    ("en-GB,en;q=0.9", "en"),
    ("pt-BR,pt;q=0.9,en;q=0.8", "pt_BR"),
    ("pt-PT", "pt_BR"),
    ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
    ("de", "pt_BR"),
    ("en;q=0", "pt_BR"),
    ("*", "pt_BR"),
    ("@@@ not a header ;;;", "pt_BR"),
    ("x" * 5000, "pt_BR"),
])
def test_pick_language(templates, header, expected):
    request = Request.blank("/", headers={"Accept-Language": header} if header else {})
    assert templates.pick_language(request) == expected


def test_a_host_app_overrides_one_template_at_a_time(tmp_path):
    (tmp_path / "pt_BR").mkdir()
    (tmp_path / "pt_BR" / "welcome.subject.txt").write_text("Oi {{ name }}!")
    (tmp_path / "base.html").write_text(
        '<!DOCTYPE html><html lang="x"><body class="host">{% block content %}{% endblock %}'
        '</body></html>')
    (tmp_path / "fr").mkdir()
    for part in ("subject.txt", "txt", "html"):
        (tmp_path / "fr" / f"welcome.{part}").write_text("Bonjour {{ name }}")
    templates = Templates([str(tmp_path)])
    subject, text, html = templates.render("welcome", "pt_BR", CONTEXT)
    assert subject == "Oi Zé <b>Conceição</b> & Cia!"
    assert text.startswith("Olá,")  # not overridden: the package's own
    assert 'class="host"' in html  # the host's layout
    assert "fr" in templates.languages
    assert templates.render("welcome", "fr", CONTEXT)[1] == "Bonjour Zé <b>Conceição</b> & Cia"


def test_a_default_language_without_templates_stops_start_up(tmp_path):
    with pytest.raises(ConfigurationError, match="de/welcome.subject.txt"):
        Templates([str(tmp_path)], default_language="de")


@pytest.mark.parametrize("address", [
    "", None, "ana@example.com\r\nBcc: x@example.org", "ana@example.com\nBcc: x@e.org",
    "ana", "a@b@c", "ana @example.com", "ana@example.com\x00", "a" * 250 + "@example.com",
])
def test_bad_addresses_are_refused_for_good(address):
    with pytest.raises(PermanentError, match="invalid recipient address"):
        recipient("Ana", address)


@pytest.mark.parametrize("name", [
    "Ana\r\nBcc: evil@example.org", "=?utf-8?q?=0D=0ABcc:_evil@example.org?=",
    "Ana\u2028Cc: evil@example.org", "Eve <evil@example.org>, Bob <bob@example.org>",
])
def test_built_message_has_only_our_headers(name):
    message = build_message(SENDER, recipient(name, "ana@example.com"),
                            f"Olá {name}", "texto", "<p>html</p>")
    raw = message.as_bytes(policy=email.policy.SMTP)
    raw.decode("ascii")  # 7-bit clean: quoted-printable bodies, RFC 2047 headers
    head = raw.split(b"\r\n\r\n")[0]
    names = [line.split(b":")[0] for line in head.split(b"\r\n") if line[:1] not in (b" ", b"\t")]
    assert names == [b"From", b"To", b"Subject", b"Date", b"Message-ID", b"Auto-Submitted",
                     b"MIME-Version", b"Content-Type"]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ana@example.com"]


def test_one_line():
    assert one_line("a\r\n b\tc\x00d\u2028e") == "a b c d e"
    assert one_line("=?utf-8?b?QQ==?=") == "= ?utf-8?b?QQ== ?="
    assert one_line("x" * 300, 10) == "x" * 10


def test_accented_names_survive_the_round_trip():
    name = "Conceição Ãraújo Élise"
    message = build_message(SENDER, recipient(name, "ana@example.com"), f"Olá, {name}",
                            f"Olá, {name}!", f"<p>Olá, {name}!</p>")
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == name
    assert parsed["Subject"] == f"Olá, {name}"
    assert parsed.get_body(("plain",)).get_content() == f"Olá, {name}!\n"
    assert parsed.get_body(("html",)).get_content() == f"<p>Olá, {name}!</p>\n"


def test_sealed_values_open_only_with_the_same_secret():
    settings = {"vexpenses.env": "development", "vexpenses.jwt_secret": "one secret"}
    mailer = Mailer(load_settings(settings, {}), settings)
    sealed = mailer.seal({"reset_url": "https://x.test/r?token=abc"})
    assert "abc" not in sealed
    assert mailer.unseal(sealed) == {"reset_url": "https://x.test/r?token=abc"}
    other = {**settings, "vexpenses.jwt_secret": "another secret"}
    with pytest.raises(UnsealError):
        Mailer(load_settings(other, {}), other).unseal(sealed)
    with pytest.raises(UnsealError):
        mailer.unseal(None)
