"""Issue 9, class 6: an anonymous action about an account is that account's
row, never the requester's; a failed login stores an address or a marker,
never what was typed; the log list's links never carry the Host header."""

import logging
import urllib.parse

import pytest
from vexpenses_audit_log.recorder import NOT_AN_ADDRESS
from vexpenses_audit_log.testing import bearer, register, settle, stored_rows

from vexpenses_core import hookimpl
from vexpenses_core.tasks import make_task_request
from vexpenses_core.testing import (
    HOSTILE_HOSTS,
    assert_not_reflected,
    hostile_host_environ,
    make_user,
)

# What people type into the e-mail field of a login form, passwords first.
TYPED_IN_THE_EMAIL_FIELD = [
    "hunter2-Secret!",
    "correct horse battery staple",
    "P@ssw0rd",
    "p@ss@word.example",
    "s3cr3t@",
    "Sécret-Passwört",
    "ana@example.com hunter2",
    "\t pässwörd \n",
    "x" * 300,
]


@pytest.fixture
def app(make_app, redis_url):
    return make_app(**{"vexpenses.redis_url": redis_url,
                       "vexpenses.tasks.broker": "inprocess"})


def own_log(app, token):
    return app.get("/api/v1/log", headers=bearer(token)).json["data"]["data"]


def test_anonymous_actions_about_an_account_are_that_accounts_rows(app):
    registry = app.app.registry
    links = []

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, reset_url):
            links.append(reset_url)

    registry.pm.register(Catcher())
    ana, _ = make_user(registry, email="ana@example.com", password="ana's password")
    bob, bob_token = make_user(registry, email="bob@example.com", name="Bob")
    as_bob = bearer(bob_token)  # Bob sends his token along on the anonymous routes
    app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"}, headers=as_bob)
    settle(app)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(links[-1]).query)
    app.post_json("/api/v1/user/recover-password", {
        "token": query["token"][0], "email": "ana@example.com",
        "password": "a new password 1", "password_confirmation": "a new password 1",
    }, headers=as_bob)
    carla = register(app, "carla@example.com", name="Carla", **as_bob).json["data"]["id"]
    settle(app)

    rows = {row["action"]: row for row in stored_rows(app)}
    assert rows["Password reset requested"]["user_id"] == ana
    assert rows["Password reset completed"]["user_id"] == ana
    assert rows["User register"]["user_id"] == carla
    for row in own_log(app, bob_token):
        assert row["user_id"] == bob
        assert "ana@example.com" not in row["description"]
        assert "carla@example.com" not in row["description"]


@pytest.mark.parametrize("typed", TYPED_IN_THE_EMAIL_FIELD)
def test_what_is_typed_in_the_email_field_is_stored_nowhere(app, caplog, typed):
    caplog.set_level(logging.DEBUG)
    registry = app.app.registry
    make_user(registry, email="ana@example.com", password="ana's password")
    res = app.post_json("/api/v1/user/authenticate", {"email": typed, "password": "whatever"},
                        status="*")
    assert res.status_int in (401, 422)
    assert typed not in res.text
    # The core refuses it before any hook; a plugin may still call the hook with it.
    registry.pm.hook.vexpenses_login_failed(request=make_task_request(registry), email=typed)
    settle(app)

    [row] = [r for r in stored_rows(app) if r["action"] == "User login failed"]
    assert row["user_id"] is None
    assert row["description"] == f"Failed login for {NOT_AN_ADDRESS}."
    stored = "".join(str(value) for value in row.values())
    keys = [k.decode("utf-8", "replace") for k in registry.redis.scan_iter(
        match=registry.settings["vexpenses.redis_prefix"] + "*")]
    for text in (stored, "\n".join(keys), caplog.text):
        assert typed not in text and typed.strip() not in text


def test_a_failed_login_keeps_a_well_formed_address(app):
    app.post_json("/api/v1/user/authenticate",
                  {"email": "Nobody@Example.com", "password": "wrong password"}, status=401)
    settle(app)
    [row] = stored_rows(app)
    assert (row["user_id"], row["description"]) == (None, "Failed login for nobody@example.com.")


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_log_list_links_never_carry_the_host(app, host):
    _, token = make_user(app.app.registry, email="ana@example.com", is_admin=True)
    for _ in range(11):
        app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    res = app.get("/api/v1/log?action=Get", headers=bearer(token),
                  extra_environ=hostile_host_environ(host))
    assert_not_reflected(res)
    assert res.json["data"]["next_page_url"] == "http://localhost/api/v1/log?action=Get&page=2"
    detail = app.get(f"/api/v1/log/{res.json['data']['data'][0]['id']}", headers=bearer(token))
    assert res.headers["Cache-Control"] == detail.headers["Cache-Control"] == "no-store"
