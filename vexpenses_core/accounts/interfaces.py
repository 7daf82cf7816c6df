"""The accounts' replaceable services.

Each is registered with ``pyramid_services`` and found with
``request.find_service(IFoo)``; a host app puts its own in place with one
``config.register_service_factory(factory, IFoo)`` after including
vexpenses (docs/configuration.md).
"""

from zope.interface import Interface


class IPasswordHasher(Interface):
    """Hashes and checks passwords. One per process: the factory returns it."""

    def hash(password):
        """A new hash of ``password``, to store."""

    def verify(password_hash, password):
        """True when ``password`` matches ``password_hash``; a missing hash never matches."""

    def needs_rehash(password_hash):
        """True when a hash that just verified should be replaced by a fresh one."""

    def burn(password):
        """Spend the time of one verification: for logins of unknown users."""


class IRateLimiter(Interface):
    """Abuse limits on the public accounts routes. One per process."""

    def hit(name, key):
        """Count one attempt under limit ``name`` for ``key``; raise ``RateLimited`` when over."""

    def check_login_delay(account):
        """Raise ``RateLimited`` while ``account`` must wait after failed logins."""

    def login_failed(account):
        """Count a failed login of ``account``."""

    def login_succeeded(account):
        """Forget ``account``'s failed logins: after a login or a password reset."""
