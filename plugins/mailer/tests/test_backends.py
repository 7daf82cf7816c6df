"""The three backends: SMTP with STARTTLS, implicit TLS and AUTH; .eml files; console."""

import datetime
import email
import email.policy
import io
import ipaddress
import logging
import os
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vexpenses_mailer.backends import (
    ConnectionFailed,
    ConsoleMailer,
    FileMailer,
    SMTPMailer,
    TransientError,
)
from vexpenses_mailer.messages import build_message, recipient
from vexpenses_mailer.settings import parse_mail_from, parse_smtp_url
from vexpenses_mailer.testing import DEFAULT_PASSWORD, SMTPSink, html_links, links, register

SENDER = parse_mail_from("Equipe vexpenses <no-reply@example.com>")
USER = "mailer@example.com"


def message(name="Conceição", text="Olá, https://x.test/r?token=abc&email=a"):
    return build_message(SENDER, recipient(name, "ana@example.com"), f"Olá, {name}", text,
                         f"<p>{text}</p>")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: the server's, and the client's CA file."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, str(cert_file)


def quoted(password):
    from urllib.parse import quote

    return quote(password, safe="")


def test_starttls_and_auth(certificate, caplog):
    caplog.set_level(logging.DEBUG)
    context, cafile = certificate
    with SMTPSink(tls_context=context, auth=(USER, DEFAULT_PASSWORD)) as sink:
        url = (f"smtp://{quoted(USER)}:{quoted(DEFAULT_PASSWORD)}@127.0.0.1:{sink.port}"
               f"?starttls=true&cafile={cafile}")
        mailer = SMTPMailer(parse_smtp_url(url))
        connection = mailer.open()
        connection.send(message(), "no-reply@example.com", "ana@example.com")
        connection.send(message("Élise"), "no-reply@example.com", "ana@example.com")
        connection.close()
        assert sink.count == 2
        assert sink.logins == [("PLAIN", USER, True)]  # one login for the batch
        assert sink.messages[1]["To"].addresses[0].display_name == "Élise"
    for record in caplog.records:
        assert DEFAULT_PASSWORD not in record.getMessage()


def test_implicit_tls(certificate):
    context, cafile = certificate
    with SMTPSink(tls_context=context, implicit_tls=True) as sink:
        url = f"smtps://127.0.0.1:{sink.port}?cafile={cafile}"
        connection = SMTPMailer(parse_smtp_url(url)).open()
        connection.send(message(), "no-reply@example.com", "ana@example.com")
        connection.close()
        assert sink.count == 1


def test_tls_failures_are_connection_failures(certificate):
    context, cafile = certificate
    with SMTPSink(tls_context=context, auth=(USER, DEFAULT_PASSWORD)) as sink:
        # an untrusted certificate
        untrusted = SMTPMailer(parse_smtp_url(f"smtp://127.0.0.1:{sink.port}?starttls=true"))
        with pytest.raises(ConnectionFailed, match="CERTIFICATE_VERIFY_FAILED"):
            untrusted.open()
        # a wrong password: the reply is kept, the password is not
        url = (f"smtp://{quoted(USER)}:wrong-hunter2@127.0.0.1:{sink.port}"
               f"?starttls=true&cafile={cafile}")
        with pytest.raises(ConnectionFailed) as caught:
            SMTPMailer(parse_smtp_url(url)).open()
        assert "535" in str(caught.value) and "hunter2" not in str(caught.value)
        assert "smtp://mailer@example.com:***@127.0.0.1" in str(caught.value)
    # a server without STARTTLS, when it is required
    with SMTPSink() as plain:
        required = SMTPMailer(parse_smtp_url(f"smtp://127.0.0.1:{plain.port}?starttls=true"))
        with pytest.raises(ConnectionFailed, match="STARTTLS"):
            required.open()


def test_file_backend_writes_readable_eml_files(tmp_path):
    folder = tmp_path / "mail"
    mailer = FileMailer(str(folder))
    connection = mailer.open()
    path = connection.send(message(), "no-reply@example.com", "ana@example.com")
    connection.send(message("Élise"), "no-reply@example.com", "ana@example.com")
    files = sorted(folder.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"] and str(files[0]) == path
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds live links
    with open(path, "rb") as f:
        parsed = email.message_from_binary_file(f, policy=email.policy.default)
    assert parsed["To"].addresses[0].display_name == "Conceição"
    assert parsed["Subject"] == "Olá, Conceição"
    assert parsed.get_body(("plain",)).get_content().startswith("Olá, https://x.test/")
    assert parsed.get_body(("html",)).get_content().startswith("<p>Olá")


def test_file_backend_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(TransientError):
        FileMailer(str(blocker / "mail")).open()


def test_console_backend_prints_headers_and_text():
    out = io.StringIO()
    ConsoleMailer(out).open().send(message(), "no-reply@example.com", "ana@example.com")
    printed = out.getvalue()
    assert "Envelope-To: ana@example.com" in printed
    assert "Subject: Olá, Conceição" in printed
    assert "To: Conceição <ana@example.com>" in printed
    assert "Olá, https://x.test/r?token=abc&email=a" in printed


def test_the_embedded_default_writes_eml_files(make_testapp, tmp_path):
    app = make_testapp(**{"vexpenses.upload_dir": str(tmp_path / "uploads")})
    assert app.app.registry.mailer.settings.backend == "file"
    register(app, status=201)
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    app.app.registry.queue.drain()
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert len(files) == 3  # the welcome, the verification link and the reset link
    parsed = [email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
              for f in files]
    subjects = sorted(p["Subject"] for p in parsed)
    assert subjects == ["Bem-vindo(a) ao vexpenses",
                        "Confirme seu e-mail no vexpenses",
                        "Redefinição de senha do vexpenses"]
    reset = next(p for p in parsed if p["Subject"].startswith("Redefinição"))
    text = reset.get_body(("plain",)).get_content()
    [link] = [u for u in links(text) if "/reset-password?" in u]
    assert html_links(reset.get_body(("html",)).get_content()) == [link]
    app.get(link.replace("http://localhost", ""), status=200)


def test_console_backend_in_the_app(make_testapp, capsys):
    app = make_testapp(**{"vexpenses.mailer.backend": "console"})
    register(app, status=201)
    app.app.registry.queue.drain()
    out = capsys.readouterr().out
    assert "Subject: Bem-vindo(a) ao vexpenses\n" in out
    assert "Envelope-To: ana@example.com" in out
