"""The one SHA-256 of a string: stored token digests and rate-limit keys."""

import hashlib

from vexpenses_core.accounts.digests import sha256
from vexpenses_core.accounts.ratelimit import hashed


def test_sha256_is_the_hex_digest_of_the_utf8_bytes():
    assert sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert sha256("böb@example.com") == hashlib.sha256(
        "böb@example.com".encode()).hexdigest()


def test_sha256_hashes_a_lone_surrogate_instead_of_raising():
    assert sha256("a\ud800") == hashlib.sha256(b"a\xed\xa0\x80").hexdigest()
    assert sha256("a\ud800") != sha256("a\ud801")


def test_rate_limit_keys_are_unchanged_by_sharing_it():
    """The counters already in Redis keep their keys across an upgrade."""
    for key in ("ana@example.com", "böb@example.com", "x\udc80", 42, "203.0.113.9"):
        assert hashed(key) == hashlib.sha256(
            str(key).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    assert len(hashed("a" * 10000)) == 32
