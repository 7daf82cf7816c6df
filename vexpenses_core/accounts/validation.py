"""Validation of account input, with Laravel's messages per field.

Each check returns the cleaned value or records a message; ``raise_if_any``
turns the messages into a 422 in the envelope. Every length is checked
before the value is stored, hashed, counted or used as a key.
"""

import datetime
import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from ..api import ValidationError

# RFC 5321: a path holds at most 256 octets with its angle brackets, so an
# address at most 254; a local part at most 64. Anything longer is refused
# before it is parsed, let alone used as a rate-limit key.
MAX_EMAIL_OCTETS = 254
MAX_LOCAL_OCTETS = 64
# Longer than any password we let anyone set (register's own limit).
MAX_PASSWORD_LENGTH = 1024
MAX_TOKEN_LENGTH = 200

# Characters no name needs and an attacker loves: C0 and C1 controls (tab
# and newline included), lone surrogates, line and paragraph separators,
# bidirectional controls, and invisible format characters. ZWJ and ZWNJ
# stay: Persian, Indic scripts and emoji need them.
_UNSAFE_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def label(field):
    return field.replace("_", " ")


def has_unsafe_text(value):
    """True when ``value`` holds a control, bidi or invisible character."""
    return _UNSAFE_TEXT.search(value) is not None


class Validator:
    def __init__(self, data):
        self.data = data
        self.errors = {}

    def error(self, field, message):
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self):
        if self.errors:
            raise ValidationError(self.errors)

    def string(self, field, *, required=True):
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(field, f"The {label(field)} field is required.")
            return None
        if not isinstance(value, str):
            self.error(field, f"The {label(field)} field must be a string.")
            return None
        if "\x00" in value:
            self.error(field, f"The {label(field)} field must not contain null characters.")
            return None
        return value

    def text(self, field, *, required=True):
        """A free-text field: no controls, bidi overrides or invisible characters."""
        value = self.string(field, required=required)
        if value is not None and has_unsafe_text(value):
            self.error(field, f"The {label(field)} field must not contain control, "
                              "invisible or text-direction characters.")
            return None
        return value

    def name(self, field="name"):
        value = self.text(field)
        if value is None:
            return None
        if len(value) > 4 * 255:  # no need to fold megabytes to say "too long"
            self.error(field, f"The {label(field)} field must not be greater than 255 characters.")
            return None
        value = " ".join(value.split())  # trims, and folds inner runs of spaces
        if len(value) < 3:
            self.error(field, f"The {label(field)} field must be at least 3 characters.")
        elif len(value) > 255:
            self.error(field, f"The {label(field)} field must not be greater than 255 characters.")
        return value

    def email(self, field="email"):
        value = self.string(field)
        if value is None:
            return None
        if email_too_long(value):
            self.error(field, f"The {label(field)} field must not be greater than "
                              f"{MAX_EMAIL_OCTETS} characters.")
            return None
        normalized = normalize_email(value)
        if normalized is None:
            self.error(field, f"The {label(field)} field must be a valid email address.")
        return normalized

    def bounded(self, field, maximum, *, required=True):
        """A string that is only compared or hashed (a password, a token): bounded."""
        value = self.string(field, required=required)
        if value is not None and len(value) > maximum:
            self.error(field, f"The {label(field)} field must not be greater than "
                              f"{maximum} characters.")
            return None
        return value

    def password(self, field="password"):
        value = self.string(field)
        if value is None:
            return None
        if len(value) < 8:
            self.error(field, f"The {label(field)} field must be at least 8 characters.")
        elif len(value) > MAX_PASSWORD_LENGTH:  # argon2 would happily hash megabytes
            message = (f"The {label(field)} field must not be greater than "
                       f"{MAX_PASSWORD_LENGTH} characters.")
            self.error(field, message)
        if self.data.get(f"{field}_confirmation") != value:
            self.error(field, f"The {label(field)} field confirmation does not match.")
        return value

    def birth_date(self, field="birth_date", *, required=True, today=None):
        value = self.string(field, required=required)
        if value is None:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.error(field, f"The {label(field)} field must be a valid date.")
            return None
        if parsed > (today or datetime.datetime.now(datetime.UTC).date()):
            self.error(field, f"The {label(field)} field must be a date before or equal to today.")
            return None
        return parsed


def email_too_long(value):
    """True when ``value``, trimmed, is longer than RFC 5321 allows (in UTF-8 octets)."""
    # Characters first: a megabyte is refused without being encoded.
    value = value.strip()
    return len(value) > MAX_EMAIL_OCTETS or len(value.encode("utf-8", "surrogatepass")) > \
        MAX_EMAIL_OCTETS


def normalize_email(value):
    """The canonical form of an address, or ``None`` when it is not one we accept.

    One address, one identity, on every database (docs/security.md):

    - surrounding white space is dropped; the whole is at most 254 octets of
      UTF-8 and the local part at most 64 (RFC 5321);
    - the syntax is RFC 5322's dot-atom with RFC 6531's Unicode: no quoted
      local parts, no IP literals, no controls, no invisible characters;
    - the domain is IDNA 2008 (UTS #46) normalised, in its Unicode form:
      ``BÜCHER.de``, ``xn--bcher-kva.de`` and ``ｂücher.de`` are ``bücher.de``;
    - the local part is NFC, and is refused when compatibility
      normalisation (NFKC) would change it: ``ｊose`` (full width) or ``ﬁ``
      (a ligature) would look like another person's address;
    - case is folded with ``str.lower``, not ``casefold``: ``Ana`` is ``ana``,
      as the original app did, but ``ß`` stays distinct from ``ss``;
    - ``é`` and ``e`` stay distinct: they are different mailboxes.

    The result is compared byte for byte (utf8mb4_bin on MariaDB). Syntax
    only: no DNS lookups.
    """
    if not isinstance(value, str) or email_too_long(value):
        return None
    try:
        result = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        return None
    local = result.local_part
    if unicodedata.normalize("NFKC", local) != local:
        return None
    local = unicodedata.normalize("NFC", local.lower())
    if len(local.encode("utf-8")) > MAX_LOCAL_OCTETS:
        return None
    return f"{local}@{result.domain}"


def parse_date(value, formats=("%Y-%m-%d",)):
    value = value.strip()
    for fmt in formats:
        try:
            parsed = datetime.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if parsed.strftime(fmt) != value:  # "2020-1-5" and friends: not the format asked
            continue
        if parsed.year < 1900:
            return None
        return parsed
    return None
