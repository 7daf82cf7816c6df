"""One e-mail address is one identity, on every database (docs/security.md).

Each test runs on SQLite and MariaDB with real Redis: MariaDB's default
collation is where two spellings used to meet one account.
"""

import unicodedata

import pytest
import sqlalchemy as sa
from alembic import command

from vexpenses_core import make_app
from vexpenses_core.accounts.validation import normalize_email
from vexpenses_core.migrate import MigrationRefused, alembic_config
from vexpenses_core.testing import base_settings

PASSWORD = "correct horse battery"
VICTIM = "josé@example.com"


@pytest.fixture
def app(make_testapp, redis_url):
    return make_testapp(**{"vexpenses.redis_url": redis_url})


def register(app, email, status=201, name="Some Person"):
    return app.post_json("/api/v1/user/register", {
        "name": name, "email": email, "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01",
    }, status=status)


def login(app, email, password=PASSWORD, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": email, "password": password}, status=status)


# Spellings that are the victim's address: they reach the victim, and only them.
SAME = [
    "JOSÉ@example.com",
    "josé@EXAMPLE.COM",
    "  josé@example.com ",
    unicodedata.normalize("NFD", "josé@example.com"),  # e + combining acute
]
# Spellings that MariaDB's utf8mb4_unicode_ci took for the victim's address.
# Each is another address, or none at all; none may reach the victim.
OTHERS = [
    "jose@example.com",
    "josè@example.com",
    "jösé@example.com",
]
REFUSED = [
    "ｊosé@example.com",  # full width: looks like the victim, NFKC would change it
    "jo\u200bsé@example.com",  # zero-width space
    "jo\u00adsé@example.com",  # soft hyphen
    "josé\u202e@example.com",  # right-to-left override
    "jos\ufb01@example.com",  # the "fi" ligature
    "josé@example.com\x00",
    "josé@example.com\r\nBcc: x@example.com",
]


@pytest.mark.parametrize("spelling", SAME)
def test_every_spelling_of_an_address_is_its_one_account(app, spelling):
    user_id = register(app, VICTIM).json["data"]["id"]
    assert login(app, spelling).json["data"]["user"]["id"] == user_id
    register(app, spelling, status=422)


@pytest.mark.parametrize("spelling", OTHERS)
def test_a_lookalike_never_reaches_the_victims_account(app, spelling):
    register(app, VICTIM)
    res = login(app, spelling, status=401)
    assert "token" not in str(res.json)


@pytest.mark.parametrize("spelling", OTHERS)
def test_distinct_addresses_are_distinct_accounts_on_every_database(app, spelling):
    victim = register(app, VICTIM).json["data"]
    other = register(app, spelling, name="Other Person").json["data"]
    assert other["id"] != victim["id"]
    assert other["email"] == normalize_email(spelling) != victim["email"]
    assert login(app, spelling).json["data"]["user"]["id"] == other["id"]
    assert login(app, VICTIM).json["data"]["user"]["id"] == victim["id"]


@pytest.mark.parametrize("spelling", REFUSED)
def test_confusable_and_invisible_spellings_are_refused(app, spelling):
    register(app, VICTIM)
    res = register(app, spelling, status=422)
    assert list(res.json["errors"]) == ["email"]
    login(app, spelling, status=422)
    app.post_json("/api/v1/user/forgot-password", {"email": spelling}, status=422)


def test_the_stored_address_is_canonical(app):
    data = register(app, "  Böb@BÜCHER.De ").json["data"]
    assert data["email"] == "böb@bücher.de"
    assert login(app, "böb@xn--bcher-kva.de").json["data"]["user"]["id"] == data["id"]


@pytest.mark.parametrize("address", ["Ana@Example.com", "josé@example.com", "böb@bücher.de",
                                     "İlker@example.com", "ß@example.com", "x@ｅxample.com"])
def test_the_canonical_form_is_stable(address):
    canonical = normalize_email(address)
    assert canonical is not None
    assert normalize_email(canonical) == canonical


# -- limits count the identity, not the spelling ----------------------------


def test_the_account_limit_counts_every_spelling_together(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.login_account": "3 per minute",
                          "vexpenses.ratelimit.login_free_failures": "100"})
    register(app, VICTIM)
    for spelling in SAME[:3]:
        login(app, spelling, password="wrong password", status=401)
    res = login(app, SAME[3], password="wrong password", status=429)
    assert int(res.headers["Retry-After"]) >= 1


def test_the_escalating_delay_counts_every_spelling_together(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.login_free_failures": "2"})
    register(app, VICTIM)
    login(app, SAME[0], password="wrong password", status=401)
    login(app, SAME[1], password="wrong password", status=401)
    login(app, SAME[2], password="wrong password", status=401)
    login(app, SAME[3], status=429)  # even the right password waits


def test_the_forgot_password_limit_counts_every_spelling_together(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.forgot_email": "2 per hour"})
    register(app, VICTIM)
    for spelling in SAME[:2]:
        app.post_json("/api/v1/user/forgot-password", {"email": spelling}, status=200)
    app.post_json("/api/v1/user/forgot-password", {"email": SAME[2]}, status=429)


def test_redis_keys_never_hold_what_was_typed(app):
    register(app, VICTIM)
    login(app, "JOSÉ@example.com", password="wrong password", status=401)
    app.post_json("/api/v1/user/forgot-password", {"email": "josé@Example.com"})
    redis = app.app.registry.redis
    keys = [key.decode("utf-8", "replace") for key in redis.scan_iter(count=1000)]
    mine = [key for key in keys if app.app.registry.settings["vexpenses.redis_prefix"] in key]
    assert mine, "the limits wrote nothing: this test would prove nothing"
    for key in mine:
        assert "example" not in key.lower() and "jos" not in key.lower(), key


# -- the migration to canonical addresses -------------------------------------


def migrated_to_0003(url, environ_clean, emails):
    app = make_app(base_settings(url))
    config = alembic_config(app.registry)
    command.upgrade(config, "core_0003")
    with app.registry.dbengine.begin() as conn:
        for i, email in enumerate(emails):
            conn.execute(sa.text(
                "INSERT INTO users (name, email, is_admin, created_at, updated_at) "
                "VALUES (:name, :email, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ), {"name": f"User {i}", "email": email})
    return app.registry, config


def test_the_migration_rewrites_addresses_into_their_canonical_form(fresh_url, environ_clean):
    registry, config = migrated_to_0003(fresh_url, environ_clean,
                                        ["Ana@Example.COM", "jose@example.com",
                                         "BÖB@xn--bcher-kva.de"])
    command.upgrade(config, "core@head")
    with registry.dbengine.begin() as conn:
        emails = conn.execute(sa.text("SELECT email FROM users ORDER BY id")).scalars().all()
        assert emails == ["ana@example.com", "jose@example.com", "böb@bücher.de"]
        # Byte for byte now, on MariaDB too: josé is not jose.
        conn.execute(sa.text(
            "INSERT INTO users (name, email, is_admin, created_at, updated_at) "
            "VALUES ('José', 'josé@example.com', 0, '2026-01-01', '2026-01-01')"))
    registry.dbengine.dispose()


def test_the_migration_refuses_to_merge_accounts_and_names_them(fresh_url, environ_clean):
    # Two rows that even MariaDB's old collation let in, and the new rule makes one.
    registry, config = migrated_to_0003(fresh_url, environ_clean,
                                        ["Ana@Bücher.de", "someone@example.com",
                                         "ana@xn--bcher-kva.de"])
    with pytest.raises(MigrationRefused) as refused:
        command.upgrade(config, "core@head")
    message = str(refused.value)
    assert "'ana@bücher.de'" in message
    assert "user 1" in message and "user 3" in message and "user 2" not in message
    with registry.dbengine.begin() as conn:  # nothing was changed
        emails = conn.execute(sa.text("SELECT email FROM users ORDER BY id")).scalars().all()
    assert emails[0] == "Ana@Bücher.de"
    registry.dbengine.dispose()


# -- an anonymous caller can't make registration send mail without limit ---------


def test_registrations_from_one_address_are_limited(make_testapp, redis_url):
    app = make_testapp(**{"vexpenses.redis_url": redis_url,
                          "vexpenses.ratelimit.register_ip": "2 per hour"})
    register(app, "a@example.com")
    register(app, "b@example.com")
    register(app, "c@example.com", status=422, name="x")  # invalid: not counted, not hashed
    res = register(app, "c@example.com", status=429)
    assert int(res.headers["Retry-After"]) > 0
    other = {"REMOTE_ADDR": "192.0.2.7"}
    app.post_json("/api/v1/user/register", {
        "name": "Some Person", "email": "c@example.com", "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"},
        extra_environ=other, status=201)
