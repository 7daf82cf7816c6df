"""Erasure (the LGPD right to erasure): a deleted user's details go, the chain stays.

The rows about the user keep their place in the chain; their details (the
side table) are emptied and marked, and ``verify`` still passes. Tampering
with details, or removing a details row without the mark, still shows.
"""

import datetime
import json

import pytest
import sqlalchemy as sa
from vexpenses_audit_log import chain
from vexpenses_audit_log.labels import BUILTIN_LABELS, describe
from vexpenses_audit_log.recorder import CONFIGURATION_HOOKS
from vexpenses_audit_log.testing import (
    PASSWORD,
    bearer,
    login,
    register,
    settle,
    stored_rows,
    write_records,
)

from vexpenses_core.models import User
from vexpenses_core.tasks import make_task_request
from vexpenses_core.testing import make_user

ANA = "ana.erasure@example.com"
BOB = "bob.erasure@example.com"


def execute(app, sql, **params):
    with app.app.registry.dbengine.begin() as conn:
        conn.execute(sa.text(sql), params)


def verify(app):
    registry = app.app.registry
    return chain.verify(registry.dbengine, registry.audit_log_settings.chain_key)


def everything_stored(app):
    """Every column of the audit tables, as one lower-case text."""
    text = []
    with app.app.registry.dbengine.connect() as conn:
        for table in ("audit_log_entries", "audit_log_details", "audit_log_erased",
                      "audit_log_chain"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                text += [str(value) for value in row]
    return "\n".join(text).lower()


def erase(app, user_id, email, now=None):
    """What the hookimpl does, in a transaction of its own."""
    registry = app.app.registry
    with registry.dbengine.begin() as conn:
        return chain.erase_user(conn, user_id, [email] if email else [],
                                registry.audit_log_settings.chain_key, now=now)


@pytest.fixture
def people(app):
    """Ana (registered, logged in, a failed login, looked up by an admin's filter)
    and Bob (registered, logged in); Ana then deletes her account."""
    registry = app.app.registry
    admin, admin_token = make_user(registry, email="root@example.com", is_admin=True)
    ana = register(app, ANA, name="Ana Erasure").json["data"]["id"]
    bob = register(app, BOB, name="Bob Stays").json["data"]["id"]
    ana_token = login(app, ANA)["token"]
    login(app, BOB)
    app.post_json("/api/v1/user/authenticate", {"email": ANA.upper(), "password": "nope"},
                  status=401)
    app.get("/api/v1/user", {"email": ANA}, headers=bearer(admin_token))
    app.get("/api/v1/user/me", headers=bearer(ana_token))
    settle(app)
    before = stored_rows(app)
    app.delete_json("/api/v1/user/me", {"current_password": PASSWORD},
                    headers=bearer(ana_token), status=200)
    settle(app)
    return {"ana": ana, "bob": bob, "admin": admin, "admin_token": admin_token,
            "before": before}


def test_hook_erase_user_audit_erases_details_and_the_chain_verifies(app, people):
    rows = stored_rows(app)
    ana, bob = people["ana"], people["bob"]
    about_ana = [r for r in rows if ana in (r["user_id"], r["subject_id"])
                 and r["hook"] != "vexpenses_user_deleted"]
    assert {r["action"] for r in about_ana} >= {"User register", "User login", "Get user"}
    quoting = [r for r in people["before"]
               if ANA in (r["description"] or "") + (r["payload"] or "")]
    assert {r["action"] for r in quoting} >= {"User login failed", "Get users"}
    erased_ids = {r["id"] for r in rows if r["erased_at"] is not None}
    assert {r["id"] for r in about_ana} | {r["id"] for r in quoting} <= erased_ids
    for row in rows:
        if row["id"] in erased_ids:
            assert (row["description"], row["ip_address"], row["user_agent"],
                    row["payload"]) == (None, None, None, None)
    # The rows stay, chained as they were.
    assert [r["id"] for r in rows][:len(people["before"])] == [r["id"] for r in people["before"]]
    assert all(r["hash"] == b["hash"] for r, b in zip(rows, people["before"], strict=False))
    # Bob's rows keep their details.
    bobs = [r for r in rows if r["user_id"] == bob]
    assert bobs and all(r["erased_at"] is None and BOB in r["description"] for r in bobs)

    result = verify(app)
    assert result.ok and result.erased == len(erased_ids)
    stored = everything_stored(app)
    assert ANA not in stored and "ana erasure" not in stored
    assert BOB in stored


def test_the_deletion_row_names_the_user_by_id_only(app, people):
    [deleted] = [r for r in stored_rows(app) if r["hook"] == "vexpenses_user_deleted"]
    assert deleted["action"] == "Delete user"
    assert (deleted["user_id"], deleted["subject_id"]) == (people["ana"], people["ana"])
    assert deleted["erased_at"] is None
    assert deleted["description"] == f"User {people['ana']} deleted their account."
    assert json.loads(deleted["payload"]) == {"user": {"id": people["ana"]}, "by_admin": False}


def test_erased_rows_read_as_null_details(app, people):
    token = people["admin_token"]
    rows = stored_rows(app)
    erased = next(r for r in rows if r["erased_at"] is not None and r["user_id"])
    listed = app.get("/api/v1/log", {"user_id": erased["user_id"]},
                     headers=bearer(token)).json["data"]["data"]
    mine = next(item for item in listed if item["id"] == erased["id"])
    assert mine["description"] is None and mine["action"] == erased["action"]
    assert mine["user"] is None  # the account is gone
    detail = app.get(f"/api/v1/log/{erased['id']}", headers=bearer(token)).json["data"]
    assert (detail["description"], detail["payload"], detail["ip_address"],
            detail["user_agent"]) == (None, None, None, None)
    assert detail["erased_at"] is not None and detail["hook"] == erased["hook"]
    kept = next(r for r in rows if r["erased_at"] is None and r["description"])
    detail = app.get(f"/api/v1/log/{kept['id']}", headers=bearer(token)).json["data"]
    assert detail["description"] == kept["description"] and detail["erased_at"] is None


def test_the_export_shows_erased_rows_as_null_details(app):
    """An erased row in someone's export (an admin erased by address, then the
    person exports): nulls, not an error."""
    registry = app.app.registry
    ana, token = make_user(registry, email=ANA)
    app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    erase(app, 999_999, ANA)  # another account, once; Ana's rows quote ANA
    export = app.get("/api/v1/user/me/export", headers=bearer(token)).json["data"]
    rows = export["audit_log"]
    viewed = next(r for r in rows if r["action"] == "Get user")
    assert viewed["description"] is None and viewed["erased_at"] is not None


def test_altered_or_unmarked_missing_details_are_tampering(app):
    write_records(app.app.registry, 4)
    erase(app, 1, None)  # no row is about user 1: nothing erased
    assert verify(app).ok and verify(app).erased == 0
    # Emptying details without the mark is an alteration, not an erasure.
    execute(app, "UPDATE audit_log_details SET description = NULL, payload = NULL "
            "WHERE entry_id = 2")
    result = verify(app)
    assert (result.ok, result.row_id) == (False, 2)
    assert result.problem == "row 2 was altered: its details do not match its details_hash"
    execute(app, "DELETE FROM audit_log_details WHERE entry_id = 2")
    result = verify(app)
    assert (result.ok, result.row_id) == (False, 2)
    assert "row 2's details were removed" in result.problem
    # With the mark, it is an erasure: allowed, and counted.
    execute(app, "INSERT INTO audit_log_details (entry_id, nonce, erased_at) "
            "VALUES (2, :n, :t)", n="0" * 32, t=datetime.datetime(2026, 1, 1))
    result = verify(app)
    assert result.ok and result.erased == 1


def record(app, hook, user=None, now=None, **kwargs):
    registry = app.app.registry
    request = make_task_request(registry, "in-flight")
    return registry.audit_log_recorder.build(
        hook, request, {"request": request, "user": user, **kwargs}, now=now)


def detached_user(user_id, email):
    return User(id=user_id, name="Ana Erasure", email=email)


def test_records_in_flight_land_without_details(app):
    """Buffered before the erasure (or made by a request that was already
    running), written after: no details; made well after it (SQLite may give
    the id to a new account), or the deletion's own row: details kept."""
    registry = app.app.registry
    writer = registry.audit_log.writer
    ana = detached_user(41, ANA)
    erased_at = chain.utcnow() - datetime.timedelta(minutes=10)
    early = erased_at - datetime.timedelta(seconds=1)
    buffered = [
        record(app, "vexpenses_profile_viewed", ana, now=early),
        record(app, "vexpenses_login_failed", None, now=early, email=ANA),  # no id
        record(app, "vexpenses_users_listed", detached_user(7, "root@example.com"),
               now=early, filters={"email": ANA}),
        record(app, "vexpenses_profile_viewed", detached_user(8, BOB), now=early),
        record(app, "vexpenses_profile_viewed", ana, now=erased_at + chain.GRACE / 2),
        record(app, "vexpenses_user_deleted", ana, now=erased_at, by_admin=False),
    ]
    erase(app, 41, ANA, now=erased_at)
    later = record(app, "vexpenses_profile_viewed", detached_user(41, "new@example.com"))
    assert writer.append(buffered + [later]) == 7
    rows = stored_rows(app)
    assert [r["erased_at"] is not None for r in rows] == [
        True, True, True, False, True, False, False]
    assert rows[5]["description"] == "User 41 deleted their account."
    assert rows[6]["description"].startswith("User 41 (new@example.com)")
    assert verify(app).ok and verify(app).erased == 4
    assert ANA not in everything_stored(app)


def test_records_waiting_in_redis_land_without_details(make_app, redis_url):
    app = make_app(**{"vexpenses.redis_url": redis_url,
                      "vexpenses.audit_log.flush_seconds": "3600"})
    registry = app.app.registry
    ana, token = make_user(registry, email=ANA)
    app.get("/api/v1/user/me", headers=bearer(token))
    pipeline = registry.audit_log
    pipeline.flush(drain=False)  # pushed to Redis, not written
    assert pipeline.relay.waiting() == 1 and stored_rows(app) == []
    erase(app, ana, ANA)
    settle(app)
    [row] = stored_rows(app)
    assert row["erased_at"] is not None and row["description"] is None
    assert verify(app).ok


def test_erasure_digests_expire_but_id_tombstones_stay(app):
    long_ago = chain.utcnow() - datetime.timedelta(days=chain.DIGEST_DAYS + 1)
    erase(app, 41, ANA, now=long_ago)
    erase(app, 42, BOB)
    with app.app.registry.dbengine.connect() as conn:
        stones = dict(conn.execute(sa.text(
            "SELECT user_id, email_digest FROM audit_log_erased")).all())
    assert stones[41] is None and stones[42] == chain.email_digest(BOB)
    assert ANA not in everything_stored(app) and BOB not in everything_stored(app)


def test_prune_removes_the_details_too(app):
    registry = app.app.registry
    write_records(registry, 3, age=datetime.timedelta(days=100))
    write_records(registry, 2)
    assert chain.prune(registry.dbengine, chain.utcnow() - datetime.timedelta(days=90)) == (3, 4)
    with registry.dbengine.connect() as conn:
        kept = conn.scalars(sa.text("SELECT entry_id FROM audit_log_details "
                                    "ORDER BY entry_id")).all()
    assert kept == [4, 5] and verify(app).ok


NEW_HOOKS = {
    "vexpenses_email_verification_requested": ("Verify email", {"verify_url": "x"},
                                               "A verification link was made for User 5"),
    "vexpenses_email_verified": ("Email verified", {}, "User 5 (a@example.com) verified"),
    "vexpenses_email_change_requested": (
        "Change email requested", {"new_email": "b@example.com", "confirm_url": "x"},
        "asked to change their address to b@example.com"),
    "vexpenses_email_changed": ("Email changed", {"old_email": "z@example.com"},
                                "confirmed a new address (it was z@example.com)"),
    "vexpenses_user_viewed": ("Get user by id", {}, "User 5 (a@example.com) was looked up"),
    "vexpenses_user_updated": ("Update user by admin", {"fields": ["is_admin", "name"]},
                               "was changed by an admin (is_admin, name)"),
    "vexpenses_user_disabled": ("Disable user", {"sessions_ended": 2},
                                "was disabled; 2 session(s) ended"),
    "vexpenses_user_enabled": ("Enable user", {}, "was enabled again"),
    "vexpenses_user_sessions_revoked": ("End user sessions", {"sessions_ended": 3},
                                        "ended every session of User 5"),
    "vexpenses_user_deleted": ("Delete user", {"by_admin": True},
                               "User 5 was deleted by an admin."),
}


@pytest.mark.parametrize("hook", sorted(NEW_HOOKS))
def test_labels_and_descriptions_of_the_account_lifecycle_hooks(app, hook):
    label, arguments, sentence = NEW_HOOKS[hook]
    assert BUILTIN_LABELS[hook] == label
    made = record(app, hook, detached_user(5, "a@example.com"), **arguments)
    assert made["action"] == label and sentence in made["description"]
    assert made["subject_id"] == 5
    assert "x" not in json.loads(made["payload"]).get("verify_url", "[REDACTED]")
    if hook == "vexpenses_user_deleted":
        assert "a@example.com" not in made["description"] + made["payload"]
    assert describe(hook, label, json.loads(made["payload"])) in made["description"]


def test_erase_user_is_not_an_action():
    assert "vexpenses_erase_user" in CONFIGURATION_HOOKS


def test_an_admins_action_is_the_admins_row_about_the_target(app):
    """The admin acted (user_id), on someone (subject_id): erasing either erases it."""
    registry = app.app.registry
    admin, admin_token = make_user(registry, email="root@example.com", is_admin=True)
    ana, _ = make_user(registry, email=ANA)
    app.post(f"/api/v1/user/{ana}/logout-all", headers=bearer(admin_token), status=200)
    app.delete(f"/api/v1/user/{ana}", headers=bearer(admin_token), status=200)
    settle(app)
    rows = {r["hook"]: r for r in stored_rows(app)}
    revoked = rows["vexpenses_user_sessions_revoked"]
    assert (revoked["action"], revoked["user_id"], revoked["subject_id"]) == (
        "End user sessions", admin, ana)
    assert revoked["erased_at"] is not None  # Ana was deleted right after
    deleted = rows["vexpenses_user_deleted"]
    assert (deleted["user_id"], deleted["subject_id"]) == (admin, ana)
    assert deleted["description"] == f"User {ana} was deleted by an admin."
    assert verify(app).ok and ANA not in everything_stored(app)


def test_the_addresses_a_user_left_or_asked_for_are_theirs_too(app):
    registry = app.app.registry
    ana = detached_user(41, "now@example.com")
    registry.audit_log.writer.append([
        record(app, "vexpenses_email_change_requested", detached_user(41, ANA),
               new_email="now@example.com", confirm_url="x"),
        record(app, "vexpenses_email_changed", ana, old_email=ANA),
        record(app, "vexpenses_email_changed", detached_user(8, BOB), old_email="b@x.org"),
        record(app, "vexpenses_login_failed", None, email=ANA),
    ])
    with registry.dbengine.connect() as conn:
        past = chain.past_addresses(conn, 41)
    assert past == {ANA, "now@example.com"}
    erase(app, 41, "now@example.com")
    assert ANA in everything_stored(app)  # the failed login: no id, the old address
    with registry.dbengine.begin() as conn:
        chain.erase_user(conn, 41, ["now@example.com", *past])
    assert ANA not in everything_stored(app) and BOB in everything_stored(app)
    assert verify(app).ok
