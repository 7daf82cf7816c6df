import pytest
from vexpenses_mailer.testing import SMTPSink, catch_failures

from vexpenses_core import hookimpl, hookspec


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return "mailer"


@pytest.fixture(scope="session")
def smtp_server():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def sink(smtp_server):
    """The session's aiosmtpd server (no SMTPUTF8), emptied for this test."""
    smtp_server.clear()
    yield smtp_server
    smtp_server.clear()


@pytest.fixture(scope="session")
def smtputf8_server():
    with SMTPSink(smtputf8=True) as sink:
        yield sink


@pytest.fixture
def utf8_sink(smtputf8_server):
    """A second aiosmtpd server, offering SMTPUTF8, emptied for this test."""
    smtputf8_server.clear()
    yield smtputf8_server
    smtputf8_server.clear()


def smtp_settings(sink, **overrides):
    settings = {
        "vexpenses.mailer.backend": "smtp",
        "vexpenses.mailer.smtp_url": f"smtp://127.0.0.1:{sink.port}?timeout=5",
        "vexpenses.mailer.mail_from": "Equipe vexpenses <no-reply@vexpenses.test>",
        "vexpenses.mailer.retry_seconds": "0.01",
        "vexpenses.mailer.retry_attempts": "3",
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def mail_app(make_testapp, sink):
    """A test app whose mailer talks to the aiosmtpd sink; ``mail_app.sent()`` waits
    for the queued tasks and returns what arrived."""

    def make(server=None, verification=False, **overrides):
        """``server``: another sink than the default one, such as ``utf8_sink``.

        Registration also mails a verification link. Unless ``verification``,
        the mailer does not send it here, so that a test of another message
        gets only the messages it is about, in a known order.
        """
        server = server or sink
        app = make_testapp(**smtp_settings(server, **overrides))
        app.sink = server
        app.registry = app.app.registry
        if not verification:
            without_verification_mail(app.registry.pm)

        def sent():
            app.registry.queue.drain()
            return server.messages

        app.sent = sent
        app.failures = catch_failures(app.registry)
        return app

    return make


def without_verification_mail(pm):
    """Call ``vexpenses_email_verification_requested`` without the mailer's hookimpl."""
    name = "vexpenses_email_verification_requested"
    setattr(pm.hook, name, pm.subset_hook_caller(name, [pm.get_plugin("mailer")]))


# -- a stand-in for the csv_import plugin: its hookspecs, added the same way -----


class CsvImportSpecs:
    @hookspec
    def vexpenses_users_imported(self, request, import_id, user_ids, send_invitations):
        """A batch of imported users was committed (in a worker)."""

    @hookspec
    def vexpenses_import_finished(self, request, import_id, uploader_id, status, counts,
                                  send_invitations):
        """An import finished (in a worker)."""


class CsvImportStandIn:
    @hookimpl
    def vexpenses_addhooks(self, pm):
        pm.add_hookspecs(CsvImportSpecs)


class StandInEntryPoint:
    name = "csv_import"
    dist = None

    def load(self):
        return CsvImportStandIn()


@pytest.fixture
def with_csv_import(monkeypatch):
    """Make ``csv_import`` an installed plugin that is only this stand-in."""
    import vexpenses_core.plugins as plugins

    real = plugins.installed_plugins

    def installed():
        return {**real(), "csv_import": StandInEntryPoint()}

    monkeypatch.setattr(plugins, "installed_plugins", installed)
