"""Settings: defaults, env precedence, refusals, and the password kept out of messages."""

import pathlib

import pytest
from vexpenses_mailer.settings import SETTINGS, load_settings, parse_smtp_url

from vexpenses_core.settings import ConfigurationError

BASE = {"vexpenses.env": "development", "vexpenses.upload_dir": "/srv/app/var/uploads",
        "vexpenses.base_url": "https://api.example.com"}


def load(environ=None, **settings):
    return load_settings({**BASE, **settings}, environ or {})


def test_defaults_are_the_embedded_default():
    s = load()
    assert s.backend == "file"
    assert s.file_dir == "/srv/app/var/mail"
    assert s.language == "pt_BR"
    assert str(s.mail_from) == "vexpenses <no-reply@localhost>"
    assert s.app_url == "https://api.example.com"
    assert (s.invitations, s.invitation_days, s.rate_limit, s.batch_size) == (True, 7, 0, 200)
    assert (s.retry_attempts, s.retry_seconds) == (5, 2)
    assert load(**{"vexpenses.upload_dir": "var/uploads/"}).file_dir == "var/mail"


def test_the_language_defaults_to_the_pages_language():
    """One setting gives pages and e-mails the same fallback language."""
    assert load(**{"vexpenses.language": "en"}).language == "en"
    both = {"vexpenses.language": "en", "vexpenses.mailer.language": "pt_BR"}
    assert load(**both).language == "pt_BR"
    assert load({"VEXPENSES_MAILER_LANGUAGE": "en"}, **{"vexpenses.language": "pt_BR"}
                ).language == "en"


def test_an_smtp_url_makes_smtp_the_default():
    s = load({"VEXPENSES_SMTP_URL": "smtp://mx.example.com"})
    assert s.backend == "smtp"
    assert (s.smtp.host, s.smtp.port, s.smtp.tls, s.smtp.username) == (
        "mx.example.com", 25, "none", None)


def test_env_wins_over_ini_even_when_empty():
    ini = {"vexpenses.mailer.smtp_url": "smtp://ini.example.com",
           "vexpenses.mailer.mail_from": "ini@example.com",
           "vexpenses.mailer.rate_limit": "5"}
    s = load({"VEXPENSES_SMTP_URL": "", "VEXPENSES_MAILER_RATE_LIMIT": "2.5"}, **ini)
    assert s.backend == "file" and s.smtp is None
    assert s.rate_limit == 2.5
    assert s.mail_from.addr_spec == "ini@example.com"
    s = load({"VEXPENSES_MAIL_FROM": "Vexpenses Ção <mail@example.com>"}, **ini)
    assert (s.mail_from.display_name, s.mail_from.addr_spec) == ("Vexpenses Ção",
                                                                 "mail@example.com")


@pytest.mark.parametrize("url, expected", [
    ("smtp://user:pass@host.example.com:587?starttls=true",
     ("host.example.com", 587, "starttls", "user", "pass")),
    ("smtp://host.example.com?starttls=1", ("host.example.com", 587, "starttls", None, None)),
    ("smtps://u%40x.com:p%3Aa%2Fss%20w@host.example.com",
     ("host.example.com", 465, "ssl", "u@x.com", "p:a/ss w")),
    ("smtp://user:pass@127.0.0.1:2525", ("127.0.0.1", 2525, "none", "user", "pass")),
    ("smtp://[::1]:25", ("::1", 25, "none", None, None)),
])
def test_smtp_urls(url, expected):
    config = parse_smtp_url(url)
    assert (config.host, config.port, config.tls, config.username, config.password) == expected
    assert "pass" not in repr(config) or config.password is None
    if config.password:
        assert config.password not in config.safe_url()


@pytest.mark.parametrize("url, message", [
    ("http://host", "must look like"),
    ("smtp://", "must look like"),
    ("smtp://host:notaport", "not a valid URL"),
    ("smtp://host?startls=true", "unknown options startls"),
    ("smtps://host?starttls=true", "already TLS"),
    ("smtp://host?timeout=-1", "timeout"),
    ("smtp://user:hunter2@mail.example.com:25", "credentials but no TLS"),
    ("smtp://host?starttls=true&cafile=/nonexistent.pem", "does not exist"),
])
def test_bad_smtp_urls_stop_start_up_without_the_password(url, message):
    with pytest.raises(ConfigurationError, match=message) as caught:
        load({"VEXPENSES_SMTP_URL": url})
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("settings, message", [
    ({"vexpenses.mailer.backend": "pigeon"}, "must be one of smtp, file, console"),
    ({"vexpenses.mailer.backend": "smtp"}, "no server is set"),
    ({"vexpenses.mailer.mail_from": "not an address"}, "must be one address"),
    ({"vexpenses.mailer.mail_from": "a@example.com, b@example.com"}, "must be one address"),
    ({"vexpenses.mailer.rate_limit": "-1"}, "rate_limit"),
    ({"vexpenses.mailer.rate_limit": "nan"}, "rate_limit"),
    ({"vexpenses.mailer.batch_size": "0"}, "batch_size"),
    ({"vexpenses.mailer.batch_size": "1.5"}, "whole number"),
    ({"vexpenses.mailer.invitation_days": "x"}, "invitation_days"),
    ({"vexpenses.mailer.retry_attempts": "0"}, "retry_attempts"),
    ({"vexpenses.mailer.language": "pt-BR; rm -rf"}, "language"),
    ({"vexpenses.mailer.template_dirs": "/no/such/folder"}, "not a folder"),
])
def test_bad_settings_stop_start_up(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        load(**settings)


def test_production_refuses_silent_defaults():
    production = {"vexpenses.env": "production"}
    with pytest.raises(ConfigurationError, match="no SMTP server in production"):
        load(**production)
    with pytest.raises(ConfigurationError, match="VEXPENSES_MAIL_FROM is not set"):
        load({"VEXPENSES_SMTP_URL": "smtp://mx.example.com"}, **production)
    with pytest.raises(ConfigurationError, match="console is refused"):
        load({"VEXPENSES_MAILER_BACKEND": "console"}, **production)
    s = load({"VEXPENSES_SMTP_URL": "smtps://u:p@mx.example.com",
              "VEXPENSES_MAIL_FROM": "no-reply@example.com"}, **production)
    assert s.backend == "smtp"
    # a pickup folder for a local MTA is a legitimate production choice
    assert load({"VEXPENSES_MAILER_BACKEND": "file",
                 "VEXPENSES_MAIL_FROM": "no-reply@example.com"}, **production).backend == "file"


def test_every_setting_is_documented():
    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs/mailer.md").read_text()
    assert SETTINGS.undocumented(doc) == []
