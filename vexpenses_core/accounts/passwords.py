"""Password hashing: argon2id, plus bcrypt hashes carried over from Laravel.

A bcrypt hash (``$2y$``/``$2b$``) still verifies, and is replaced by an
argon2id hash on the next successful login; so is an argon2 hash made with
older parameters.
"""

import argon2
import bcrypt
from zope.interface import implementer

from .interfaces import IPasswordHasher


@implementer(IPasswordHasher)
class PasswordHasher:
    def __init__(self, time_cost=3, memory_cost=65536, parallelism=4):
        self.argon2 = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism,
            type=argon2.Type.ID,
        )
        # Verified against when the user does not exist, so that a login for
        # an unknown e-mail costs as much as one for a known e-mail. Made on
        # first use: worker processes never need it, and it costs 64 MiB.
        self._dummy = None

    def hash(self, password):
        return self.argon2.hash(password)

    def verify(self, password_hash, password):
        """True when ``password`` matches; a missing hash never matches."""
        if not password_hash:
            self.burn(password)
            return False
        if password_hash.startswith(("$2y$", "$2b$", "$2a$")):
            laravel = "$2b$" + password_hash[4:]
            # PHP's bcrypt silently used only the first 72 bytes; so must we.
            try:
                return bcrypt.checkpw(password.encode()[:72], laravel.encode())
            except ValueError:
                return False
        try:
            return self.argon2.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, password_hash):
        if not password_hash.startswith("$argon2id$"):
            return True
        return self.argon2.check_needs_rehash(password_hash)

    def burn(self, password):
        """Spend the time of one verification, for unknown users."""
        if self._dummy is None:
            self._dummy = self.argon2.hash("vexpenses-timing-equaliser")
        try:
            self.argon2.verify(self._dummy, password)
        except argon2.exceptions.VerificationError:
            pass
