"""Turning a hook's arguments into JSON that holds no secret.

Two nets, because a plugin author may name a secret anything:

- **By key.** A value under a key that names a secret (``password``,
  ``password_hash``, ``token``, ``refresh_token``, ``reset_url``,
  ``secret``, ``authorization``...) is replaced whole.
- **By value.** In every string that remains: JWT-looking strings, the
  value of URL parameters such as ``token=``, ``Bearer ...`` credentials,
  password hashes (argon2, bcrypt...) and passwords in URLs are masked.

ORM objects never cross whole: a user becomes ``{id, email}``; any other
mapped object ``{type, id}``; any other object just ``{type}`` (never its
``repr``, which may print a secret).
"""

import dataclasses
import datetime
import decimal
import enum
import math
import re
import uuid

import sqlalchemy as sa

from vexpenses_core.models import User

REDACTED = "[REDACTED]"

# Found anywhere in a key (case-insensitive).
SECRET_WORDS = (
    "password", "passwd", "passphrase", "secret", "token", "authorization", "cookie",
    "apikey", "api_key", "api-key", "private_key", "privatekey", "credential",
    "reset_url", "reseturl", "reset_link", "signature",
    "verify_url", "verifyurl", "confirm_url", "confirmurl",
)
# Matched against whole parts of a key split on anything not a letter or digit.
SECRET_PARTS = frozenset({"pass", "pwd", "hash", "otp", "pin", "key", "salt", "jwt", "sig",
                          "auth", "dsn"})

MAX_DEPTH = 6
MAX_ITEMS = 100
MAX_STRING = 2000

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
# An Authorization header's credentials; 16+ characters, so prose is left alone.
_CREDENTIAL = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{16,}", re.IGNORECASE)
_HASH = re.compile(r"\$(?:argon2(?:id|i|d)|2[abxy]?|pbkdf2[-_a-z0-9]*|scrypt|[156])\$[^\s\"';]+",
                   re.IGNORECASE)
# token=..., refresh_token=..., password=..., sig=... in a URL or query string.
_SECRET_PARAM = re.compile(
    r"((?:^|[?&#;\s])[^=&#;\s]*(?:token|password|passwd|secret|key|signature|sig|code|auth)"
    r"[^=&#;\s]*=)[^&#;,\s]*",
    re.IGNORECASE,
)
# scheme://user:password@host
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]*@", re.IGNORECASE)


class Redactor:
    """Makes values JSON-safe and secret-free. One per app (extra keys are a setting)."""

    def __init__(self, extra_keys=()):
        self.extra_keys = tuple(extra_keys)
        self._key_cache = {}

    # -- keys -----------------------------------------------------------

    def is_secret_key(self, key):
        cached = self._key_cache.get(key)
        if cached is None:
            lowered = key.lower()
            cached = (
                any(word in lowered for word in SECRET_WORDS)
                or any(word in lowered for word in self.extra_keys)
                or any(part in SECRET_PARTS for part in re.split(r"[^a-z0-9]+", lowered))
            )
            if len(self._key_cache) < 10_000:
                self._key_cache[key] = cached
        return cached

    # -- values ---------------------------------------------------------

    def text(self, value, limit=MAX_STRING):
        """A string safe to store: secrets masked, storable in utf8mb4, at most ``limit``."""
        if value is None:
            return None
        value = str(value)
        if not value.isascii():
            # Lone surrogates (valid in JSON, not in UTF-8) would fail the insert.
            value = value.encode("utf-8", "replace").decode("utf-8")
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        value = scrub(value)
        if len(value) > limit:
            value = value[: limit - 1] + "…"
        return value

    def safe(self, value, depth=0):
        """``value`` as JSON-safe data with secrets removed."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if depth >= MAX_DEPTH:
            return "[nested too deep]"
        if isinstance(value, dict):
            result = {}
            for index, (key, item) in enumerate(value.items()):
                if index >= MAX_ITEMS:
                    result["…"] = f"{len(value) - MAX_ITEMS} more"
                    break
                key = self.text(key, 200)
                result[key] = REDACTED if item is not None and self.is_secret_key(key) \
                    else self.safe(item, depth + 1)
            return result
        if isinstance(value, list | tuple | set | frozenset):
            items = list(value)
            result = [self.safe(item, depth + 1) for item in items[:MAX_ITEMS]]
            if len(items) > MAX_ITEMS:
                result.append(f"… {len(items) - MAX_ITEMS} more")
            return result
        if isinstance(value, datetime.datetime | datetime.date | datetime.time):
            return value.isoformat()
        if isinstance(value, decimal.Decimal | uuid.UUID):
            return str(value)
        if isinstance(value, enum.Enum):
            return self.safe(value.value, depth + 1)
        if isinstance(value, bytes | bytearray | memoryview):
            return {"type": "bytes", "length": len(value)}
        return self.object(value, depth)

    def object(self, value, depth):
        if isinstance(value, User):
            return {"id": _loaded(value, "id"), "email": self.text(_loaded(value, "email"))}
        state = sa.inspect(value, raiseerr=False)
        if state is not None and hasattr(state, "identity"):
            identity = state.identity
            ident = identity[0] if identity and len(identity) == 1 else identity
            return {"type": type(value).__name__, "id": self.safe(ident, depth + 1)}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name, None) for f in dataclasses.fields(value)}
            return {"type": type(value).__name__, **self.safe(fields, depth + 1)}
        return {"type": type(value).__name__}


def _loaded(instance, name):
    """An attribute only if already loaded: recording must never query the database."""
    state = sa.inspect(instance)
    return state.dict.get(name, state.identity[0] if name == "id" and state.identity else None)


def scrub(text):
    """Mask secret-looking parts of a string (see the module docstring)."""
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
    if "$" in text:
        text = _HASH.sub(REDACTED, text)
    if " " in text:
        text = _CREDENTIAL.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    if "@" in text and "://" in text:
        text = _USERINFO.sub(lambda m: m.group(1) + REDACTED + "@", text)
    return text
