"""A host app sends mail its own way with one line of configuration."""

import webtest
from pyramid.config import Configurator
from vexpenses_mailer.interfaces import IMailBackend
from vexpenses_mailer.testing import register
from zope.interface import implementer

from vexpenses_core import make_wsgi_app
from vexpenses_core.testing import base_settings, clean_tables


@implementer(IMailBackend)
class Outbox:
    """Keeps each message, as a host's mail API client would hand it over."""

    def __init__(self):
        self.sent = []

    def open(self):
        return self

    def send(self, message, sender, recipient):
        self.sent.append((recipient, message["Subject"]))

    def close(self):
        pass


def test_the_welcome_goes_through_the_host_backend(database_url, environ_clean, tmp_path):
    outbox = Outbox()
    settings = base_settings(database_url, "mailer", **{
        "vexpenses.mailer.file_dir": str(tmp_path / "mail")})
    with Configurator(settings=settings) as config:
        config.include("vexpenses_core")
        config.register_service_factory(lambda context, request: outbox, IMailBackend)
    registry = config.registry
    try:
        app = webtest.TestApp(make_wsgi_app(config), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
        register(app, status=201)
        registry.queue.drain()
        # the welcome and the verification link
        assert [recipient for recipient, _ in outbox.sent] == ["ana@example.com"] * 2
        assert not (tmp_path / "mail").exists()  # the configured file backend was not used
    finally:
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()
