"""The account rules' pure building blocks: e-mail identity, dates, limits.

The request bodies that use them are declared in accounts/schemas.py.
Every length is checked before the value is stored, hashed, counted or
used as a key.
"""

import datetime
import unicodedata

from email_validator import EmailNotValidError, validate_email

from ..schemas import has_unsafe_text  # noqa: F401  (its home before the models)

# RFC 5321: a path holds at most 256 octets with its angle brackets, so an
# address at most 254; a local part at most 64. Anything longer is refused
# before it is parsed, let alone used as a rate-limit key.
MAX_EMAIL_OCTETS = 254
MAX_LOCAL_OCTETS = 64
# Longer than any password we let anyone set (register's own limit).
MAX_PASSWORD_LENGTH = 1024
MAX_TOKEN_LENGTH = 200


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
