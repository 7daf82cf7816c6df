"""Digests and comparisons of secrets: how tokens are stored and checked."""

import hashlib
import hmac


def sha256(value):
    """The hex SHA-256 of a string's UTF-8 bytes; ``surrogatepass``, as in
    :func:`constant_time_equal`, so that no string can make it raise."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def constant_time_equal(a, b):
    """``a == b`` for two strings, in time that does not depend on where they differ.

    ``hmac.compare_digest`` raises TypeError for a ``str`` holding anything
    but ASCII (an address such as ``böb@example.com``), so compare the UTF-8
    bytes; ``surrogatepass`` so that a lone surrogate from JSON cannot raise.
    """
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"),
                               b.encode("utf-8", "surrogatepass"))
