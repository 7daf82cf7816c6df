"""What the recorder records: every hook call in a request or a task, whoever defined the
hook, with the acting user; nothing for start-up hooks; never breaking the call."""

import logging

from vexpenses_audit_log.testing import PASSWORD, bearer, login, register, settle, stored_rows

from vexpenses_core import hookimpl, hookspec
from vexpenses_core.accounts.validation import normalize_email
from vexpenses_core.tasks import make_task_request
from vexpenses_core.testing import make_user


def test_start_up_hooks_are_not_recorded(app):
    # vexpenses_addhooks, _includeme, _tasks, _openapi and _app_created all ran.
    assert app.app.registry.audit_log.pending() == 0
    settle(app)
    assert stored_rows(app) == []


def test_a_hook_with_no_hookimpl_is_still_an_action(app):
    registry = app.app.registry
    assert not registry.pm.hook.vexpenses_profile_viewed.get_hookimpls()
    _, token = make_user(registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    assert [r["action"] for r in stored_rows(app)] == ["Get user"]


class InvoiceSpecs:
    @hookspec
    def vexpenses_invoice_paid(self, request, invoice_id, card_token):
        """A hook that a plugin adds after start-up."""


def test_a_hook_added_later_by_another_plugin_is_recorded(app):
    registry = app.app.registry
    registry.pm.add_hookspecs(InvoiceSpecs)

    class Billing:
        @hookimpl
        def vexpenses_invoice_paid(self, request, invoice_id):
            pass

    registry.pm.register(Billing(), name="billing")
    request = make_task_request(registry, "billing-job")
    registry.pm.hook.vexpenses_invoice_paid(request=request, invoice_id=9,
                                            card_token="tok_4111111111111111")
    settle(app)
    [row] = stored_rows(app)
    assert (row["hook"], row["action"], row["user_id"]) == (
        "vexpenses_invoice_paid", "Invoice paid", None)
    assert row["payload"] == '{"card_token":"[REDACTED]","invoice_id":9}'
    assert row["request_id"] == "billing-job"


def test_who_acted(app):
    """The authenticated user; on anonymous routes the user the hook names; the user who
    logged in for a login; nobody for a failed login, even with someone's token."""
    registry = app.app.registry
    other, other_token = make_user(registry, email="other@example.com")
    ana = register(app, "ana@example.com").json["data"]["id"]
    tokens = login(app, "ana@example.com", **bearer(other_token))
    app.post_json("/api/v1/user/authenticate", {"email": "ana@example.com", "password": "x"},
                  headers=bearer(other_token), status=401)
    app.post_json("/api/v1/user/refresh-token", {"refresh_token": tokens["refresh_token"]},
                  status=201)
    app.get("/api/v1/user", headers=bearer(other_token))
    settle(app)
    assert [(r["action"], r["user_id"]) for r in stored_rows(app)] == [
        ("User register", ana), ("Verify email", ana), ("User login", ana),
        ("User login failed", None),
        ("User refresh token", ana), ("Get users", other)]


def test_hook_audit_labels_name_a_plugins_actions(make_app, standin, monkeypatch):
    """A plugin's own table names its hook's rows (its name alone would give
    "Greeting queued")."""
    import vexpenses_audit_standin as plugin

    @hookimpl(optionalhook=True)
    def vexpenses_audit_labels():
        return {"vexpenses_greeting_queued": "Greeting waiting"}

    monkeypatch.setattr(plugin, "vexpenses_audit_labels", vexpenses_audit_labels)
    app = make_app(**{"vexpenses.plugins": "audit_log audit_standin"})
    _, token = make_user(app.app.registry, email="ana@example.com", is_admin=True)
    app.post_json("/api/v1/standin/greet", {"name": "Ana"}, headers=bearer(token), status=201)
    settle(app)
    assert [r["action"] for r in stored_rows(app)
            if r["hook"] == "vexpenses_greeting_queued"] == ["Greeting waiting"]


def test_the_built_in_labels_name_only_the_core_and_audit_log_hooks():
    import vexpenses_audit_log.hookspecs
    from vexpenses_audit_log.labels import BUILTIN_LABELS

    import vexpenses_core.hookspecs

    ours = set(dir(vexpenses_core.hookspecs)) | set(dir(vexpenses_audit_log.hookspecs))
    assert set(BUILTIN_LABELS) <= ours


def test_labels_from_the_setting_win(make_app):
    app = make_app(**{"vexpenses.audit_log.labels":
                      "vexpenses_profile_viewed = Perfil visto\nvexpenses_x_y = X"})
    _, token = make_user(app.app.registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    assert stored_rows(app)[0]["action"] == "Perfil visto"


def test_a_failing_hookimpl_is_recorded_and_noted(app):
    registry = app.app.registry

    class Broken:
        @hookimpl
        def vexpenses_profile_viewed(self, request, user):
            raise RuntimeError("boom")

    registry.pm.register(Broken(), name="broken")
    _, token = make_user(registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token), status=500)
    settle(app)
    [row] = stored_rows(app)
    assert row["action"] == "Get user"
    assert row["description"].endswith("A hookimpl raised RuntimeError.")


def test_a_recording_failure_never_breaks_the_request(app, monkeypatch, caplog):
    registry = app.app.registry
    recorder = registry.audit_log_recorder

    def fail(*args, **kwargs):
        raise ValueError("secret-in-message")

    monkeypatch.setattr(recorder, "build", fail)
    _, token = make_user(registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token), status=200)
    assert "could not record the vexpenses_profile_viewed hook call (ValueError)" in caplog.text
    assert "secret-in-message" not in caplog.text


NASTY_EMAILS = [
    "nul\x00@example.com", "😀@example.com", "a" * 5000 + "@x.com",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abcdefghijklmnop", "' OR 1=1 --", "",
    "https://evil.example/?token=leaked-token-value", "Ana@Example.COM ",
]


def test_nasty_login_input_is_recorded_safely(app):
    failed = 0
    for email in NASTY_EMAILS:
        res = app.post_json("/api/v1/user/authenticate",
                            {"email": email, "password": PASSWORD}, status="*")
        assert res.status_int in (401, 422), email
        failed += res.status_int == 401  # a 422 is refused before the password is checked
    settle(app)
    rows = stored_rows(app)
    # only well-formed addresses get as far as a password check since class 1
    assert failed == sum(normalize_email(e) is not None for e in NASTY_EMAILS)
    assert [r["action"] for r in rows] == ["User login failed"] * failed
    stored = "".join(str(v) for r in rows for v in r.values())
    assert "leaked-token-value" not in stored and "eyJ" not in stored
    assert app.app.registry.audit_log.pending() == 0  # nothing stuck


def test_unstorable_characters_in_hook_arguments_are_stored_safely(app):
    # (The core answers a lone surrogate in a login e-mail with a 500 before any
    # hook runs, so the hook is called directly here.)
    registry = app.app.registry
    request = make_task_request(registry)
    registry.pm.hook.vexpenses_users_listed(request=request, user=None,
                                            filters={"email": "\ud800x\x00@example.com"})
    settle(app)
    [row] = stored_rows(app)
    assert row["payload"] == '{"filters":{"email":"?x\ufffd@example.com"},"user":null}'


def test_records_land_even_when_logging_is_verbose(app, caplog):
    caplog.set_level(logging.DEBUG, logger="vexpenses_audit_log")
    _, token = make_user(app.app.registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    assert len(stored_rows(app)) == 1
    assert token not in caplog.text
