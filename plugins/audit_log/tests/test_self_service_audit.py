"""PATCH /api/v1/user/me and POST /api/v1/user/me/password leave one labelled row
each, the user's own, with no password in it."""

import json

from vexpenses_audit_log.testing import PASSWORD, bearer, login, register, settle, stored_rows

NEW = "a brand new passphrase"


def test_profile_update_and_password_change_are_recorded(app):
    ana = register(app, "ana@example.com").json["data"]["id"]
    token = login(app, "ana@example.com")["token"]
    login(app, "ana@example.com")
    app.patch_json("/api/v1/user/me", {"name": "Ana Maria", "birth_date": "1991-01-02"},
                   headers=bearer(token))
    app.post_json("/api/v1/user/me/password",
                  {"current_password": PASSWORD, "password": NEW,
                   "password_confirmation": NEW}, headers=bearer(token))
    settle(app)
    rows = [r for r in stored_rows(app)
            if r["hook"] in ("vexpenses_profile_updated", "vexpenses_password_changed")]
    assert [(r["action"], r["user_id"]) for r in rows] == [
        ("Update user", ana), ("Password changed", ana)]
    updated, changed = rows
    assert updated["description"] == (
        f"User {ana} (ana@example.com) updated their profile (birth_date, name).")
    assert changed["description"] == (
        f"User {ana} (ana@example.com) changed their password; 1 other session(s) ended.")
    for row in stored_rows(app):
        text = json.dumps(row, default=str)
        assert PASSWORD not in text and NEW not in text


def test_refused_changes_leave_no_row(app):
    register(app, "ana@example.com")
    token = login(app, "ana@example.com")["token"]
    app.patch_json("/api/v1/user/me", {"email": "x@example.com"}, headers=bearer(token),
                   status=422)
    app.post_json("/api/v1/user/me/password",
                  {"current_password": "wrong guess", "password": NEW,
                   "password_confirmation": NEW}, headers=bearer(token), status=422)
    settle(app)
    assert not [r for r in stored_rows(app)
                if r["hook"] in ("vexpenses_profile_updated", "vexpenses_password_changed")]
