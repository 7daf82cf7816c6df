"""Secrets never cross: by key, by value, and ORM objects reduced to ids."""

import dataclasses
import datetime
import decimal
import enum
import json
import uuid

import pytest
from vexpenses_audit_log.labels import Labels, describe, label_from_name
from vexpenses_audit_log.redaction import REDACTED, Redactor, scrub

from vexpenses_core.models import AuthSession, User

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0."
       "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi0xMjM0NQ")
ARGON = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
BCRYPT = "$2b$12$" + "a" * 53


@pytest.mark.parametrize("key", [
    "password", "password_hash", "new_password", "passwordConfirmation", "token",
    "refresh_token", "access_token", "reset_url", "secret", "client_secret", "Authorization",
    "api_key", "apiKey", "private_key", "cookie", "csrf_token", "pass", "pwd", "otp", "hash",
    "signing_key", "jwt", "credentials", "reset_link", "db_dsn",
])
def test_secret_keys_are_redacted(key):
    assert Redactor().safe({key: "s3cr3t-value"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["email", "user", "session_id", "sessions_ended", "filters",
                                 "name", "import_id", "keyboard", "passenger_count"])
def test_ordinary_keys_are_kept(key):
    assert Redactor().safe({key: "value"}) == {key: "value"}


def test_extra_keys_from_the_setting():
    redactor = Redactor(extra_keys=("cpf", "card"))
    assert redactor.safe({"cpf": "123", "card_number": "4111", "name": "Ana"}) == {
        "cpf": REDACTED, "card_number": REDACTED, "name": "Ana"}


def test_nested_secrets_and_none_values():
    value = {"filters": {"name": "Ana", "token": "abc"}, "password": None,
             "items": [{"refresh_token": "x"}, ("secret", {"api_key": 1})]}
    assert Redactor().safe(value) == {
        "filters": {"name": "Ana", "token": REDACTED}, "password": None,
        "items": [{"refresh_token": REDACTED}, ["secret", {"api_key": REDACTED}]]}


@pytest.mark.parametrize("text, expected", [
    (f"token {JWT} here", f"token {REDACTED} here"),
    ("https://x.test/reset-password?token=abc123&email=a%40b.c",
     f"https://x.test/reset-password?token={REDACTED}&email=a%40b.c"),
    ("/cb?code=xyz&state=1&refresh_token=r1", f"/cb?code={REDACTED}&state=1&"
                                              f"refresh_token={REDACTED}"),
    ("Authorization: Bearer abcdefghijklmnop123", f"Authorization: Bearer {REDACTED}"),
    ("basic dXNlcjpwYXNzd29yZDEyMzQ1Njc4", f"basic {REDACTED}"),
    (f"hash {ARGON}", f"hash {REDACTED}"),
    (f"{BCRYPT}", REDACTED),
    ("mysql://app:hunter2@db/prod", f"mysql://app:{REDACTED}@db/prod"),
    ("name=Bia, api_token=xyz, b=2", f"name=Bia, api_token={REDACTED}, b=2"),
    ("Refresh token reuse detected", "Refresh token reuse detected"),
    ("ana@example.com", "ana@example.com"),
    ("price is $5 today", "price is $5 today"),
])
def test_secret_values_are_masked_wherever_they_are(text, expected):
    assert scrub(text) == expected
    assert Redactor().safe({"note": text}) == {"note": expected}


def test_users_become_id_and_email(app):
    from vexpenses_core.testing import make_user

    user_id, _ = make_user(app.app.registry, email="ana@example.com")
    session = app.app.registry.dbsession_factory()
    try:
        user = session.get(User, user_id)
        user_session = session.query(AuthSession).filter_by(user_id=user_id).one()
        safe = Redactor().safe({"user": user, "session": user_session, "users": [user]})
    finally:
        session.close()
    assert safe == {"user": {"id": user_id, "email": "ana@example.com"},
                    "session": {"type": "AuthSession", "id": user_session.id},
                    "users": [{"id": user_id, "email": "ana@example.com"}]}


def test_an_unsaved_user_has_no_id_yet():
    assert Redactor().safe(User(email="new@example.com")) == {"id": None,
                                                               "email": "new@example.com"}


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Card:
    holder: str
    number_token: str


class Opaque:
    def __repr__(self):
        return "Opaque(password='hunter2')"


def test_other_values_are_made_json_safe():
    value = {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        "day": datetime.date(2024, 1, 2), "amount": decimal.Decimal("1.50"),
        "id": uuid.UUID(int=1), "color": Color.RED, "raw": b"\x00\x01",
        "ratio": float("nan"), "card": Card("Ana", "tok_123"), "thing": Opaque(),
        "tags": {"b"}, 7: "int key",
    }
    safe = Redactor().safe(value)
    json.dumps(safe)
    assert safe["when"] == "2024-01-02T03:04:05+00:00" and safe["day"] == "2024-01-02"
    assert safe["amount"] == "1.50" and safe["color"] == "red"
    assert safe["raw"] == {"type": "bytes", "length": 2} and safe["ratio"] == "nan"
    assert safe["card"] == {"type": "Card", "holder": "Ana", "number_token": REDACTED}
    assert safe["thing"] == {"type": "Opaque"}  # never its repr
    assert safe["7"] == "int key" and safe["tags"] == ["b"]


@pytest.mark.parametrize("nasty", [
    "\ud800lone surrogate", "nul\x00byte", "emoji 😀 and ção", "x" * 10_000,
    "<script>alert(1)</script>", "'; DROP TABLE audit_log_entries; --", "\r\nX-Evil: 1",
])
def test_nasty_strings_come_out_storable(nasty):
    safe = Redactor().text(nasty)
    safe.encode("utf-8")  # no lone surrogates left
    assert "\x00" not in safe and len(safe) <= 2000


def test_deep_and_wide_values_are_bounded():
    deep = current = {}
    for _ in range(20):
        current["next"] = current = {}
    wide = list(range(1000))
    safe = Redactor().safe({"deep": deep, "wide": wide, "map": {str(i): i for i in range(500)}})
    assert "[nested too deep]" in json.dumps(safe)
    assert len(safe["wide"]) == 101 and safe["wide"][-1] == "… 900 more"
    assert len(safe["map"]) == 101


def test_labels_fallback_and_precedence():
    assert label_from_name("vexpenses_greeting_sent") == "Greeting sent"
    assert label_from_name("other_hook") == "Other hook"
    labels = Labels({"vexpenses_user_logged_in": "User login"},
                    {"vexpenses_user_logged_in": "Sign in"})
    assert labels("vexpenses_user_logged_in") == "Sign in"
    assert labels("vexpenses_invoice_paid") == "Invoice paid"


def test_descriptions_use_only_the_redacted_payload():
    payload = {"user": {"id": 3, "email": "ana@example.com"}, "reset_url": REDACTED}
    assert describe("vexpenses_password_reset_requested", "x", payload) == (
        "A password reset link was requested for User 3 (ana@example.com).")
    assert describe("vexpenses_invoice_paid", "Invoice paid",
                    {"invoice": {"type": "Invoice", "id": 9}, "amount": 10,
                     "card_token": REDACTED, "lines": [1, 2]}) == (
        f"Invoice paid: invoice=9, amount=10, card_token={REDACTED}.")
    # a known hook called with unexpected arguments still gets a sentence
    odd = {"user": ["x"], "filters": "y", "session_id": {"a": 1}}
    for hook in ("vexpenses_user_logged_out", "vexpenses_users_listed",
                 "vexpenses_token_refreshed", "vexpenses_audit_pruned"):
        assert describe(hook, "Label", odd).endswith(".")
