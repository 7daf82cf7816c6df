"""``registry.mailer``: the settings, the templates and the seal, made once; and the
mail backend, a service (:class:`~.interfaces.IMailBackend`)."""

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from .backends import make_backend
from .interfaces import IMailBackend
from .messages import Templates
from .settings import load_settings


class Mailer:
    def __init__(self, settings, app_settings):
        self.settings = settings
        self.templates = Templates(settings.template_dirs, settings.language)
        self._fernet = Fernet(seal_key(app_settings))

    # Links with secret tokens must cross the queue to be mailed. Sealed, they
    # are unreadable in Redis and in taskiq's debug log ("Kicking ... args=").

    def seal(self, value):
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def unseal(self, sealed):
        try:
            return json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, AttributeError, ValueError):
            raise UnsealError() from None


class UnsealError(Exception):
    def __init__(self):
        super().__init__("a sealed task argument could not be opened: was it sealed with "
                         "another secret (vexpenses.jwt_secret changed, or another app)?")


def seal_key(app_settings):
    """A Fernet key derived from the app's signing secret, which the web processes
    and the workers share: the JWT secret, or the private key file with RS256/EdDSA."""
    material = app_settings.get("vexpenses.jwt_secret") or ""
    key_file = app_settings.get("vexpenses.jwt_private_key_file")
    if not material and key_file:
        with open(key_file) as f:
            material = f.read()
    digest = hashlib.sha256(b"vexpenses-mailer-seal\0" + material.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def includeme(config):
    """Safe to include twice: the first mailer is kept.

    The backend is one per process (SMTP keeps its TLS context); a host app
    replaces it with ``config.register_service_factory(..., IMailBackend)``.
    """
    config.include("pyramid_services")
    registry = config.registry
    if getattr(registry, "mailer", None) is None:
        registry.mailer = Mailer(load_settings(registry.settings), registry.settings)
    config.register_service(make_backend(registry.mailer.settings), IMailBackend)
    config.include("vexpenses_mailer.views")
