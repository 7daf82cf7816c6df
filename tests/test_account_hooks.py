"""The accounts events as a plugin sees them: what each hook is given, and what
happens to its transaction (the contract in vexpenses_core/hookspecs.py)."""

import re
import types

import pytest
from sqlalchemy import select

from vexpenses_core import hookimpl
from vexpenses_core.models import User
from vexpenses_core.testing import make_user

PASSWORD = "correct horse battery"


@pytest.fixture
def calls(testapp):
    """``[(hook without vexpenses_, {argument: value})]`` of every hook call, with
    ``user`` as ``(id, email)`` read during the call and ``request`` left out."""
    seen = []

    def before(name, impls, kwargs):
        args = {key: value for key, value in kwargs.items() if key != "request"}
        if "user" in args:
            args["user"] = (args["user"].id, args["user"].email)
        seen.append((name.removeprefix("vexpenses_"), args))

    undo = testapp.app.registry.pm.add_hookcall_monitoring(before, lambda *args: None)
    yield seen
    undo()


def named(calls, hook):
    return [args for name, args in calls if name == hook]


def trace(hook):
    """A plugin that writes a user row from inside ``hook``: does its transaction commit?"""

    def write(request):
        request.dbsession.add(User(name="Trace", email="trace@example.com"))

    return types.SimpleNamespace(**{hook: hookimpl(write)})


def traced(testapp):
    db = testapp.app.registry.dbsession_factory()
    try:
        return db.scalars(select(User.email).where(User.email == "trace@example.com")).all()
    finally:
        db.close()


def login(app, email="ana@example.com", password=PASSWORD, status=201):
    body = {"email": email, "password": password}
    return app.post_json("/api/v1/user/authenticate", body, status=status).json


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def ana(testapp):
    """Ana's id; she has a password and one login session already."""
    user_id, _ = make_user(testapp.app.registry, email="ana@example.com", password=PASSWORD)
    return user_id


def test_hook_user_registered_gets_the_flushed_user(testapp, calls):
    body = {"name": "Ana Souza", "email": "Ana@Example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17"}
    user_id = testapp.post_json("/api/v1/user/register", body, status=201).json["data"]["id"]
    assert named(calls, "user_registered") == [{"user": (user_id, "ana@example.com")}]


def test_hook_user_logged_in_names_the_new_session(testapp, calls, ana):
    token = login(testapp)["data"]["token"]
    [call] = named(calls, "user_logged_in")
    assert call["user"] == (ana, "ana@example.com")
    assert re.fullmatch(r"[0-9a-f]{32}", call["session_id"])
    sessions = testapp.get("/api/v1/user/sessions", headers=bearer(token)).json["data"]
    assert [s["id"] for s in sessions if s["current"]] == [call["session_id"]]


def test_hook_login_failed_gets_the_normalised_email_and_is_rolled_back(testapp, calls, ana):
    testapp.app.registry.pm.register(trace("vexpenses_login_failed"))
    login(testapp, email=" ANA@example.COM ", password="wrong password", status=401)
    assert named(calls, "login_failed") == [{"email": "ana@example.com"}]
    assert "wrong password" not in str(calls)
    assert traced(testapp) == []


def test_hook_user_logged_out_names_the_session_or_none_for_all(testapp, calls, ana):
    first = login(testapp)["data"]["token"]
    login(testapp)
    third = login(testapp)["data"]["token"]
    first_id, second_id, third_id = [c["session_id"] for c in named(calls, "user_logged_in")]
    testapp.delete(f"/api/v1/user/sessions/{second_id}", headers=bearer(first))
    testapp.get("/api/v1/user/logout", headers=bearer(third), status=201)
    testapp.post("/api/v1/user/logout-all", headers=bearer(first), status=201)
    user = (ana, "ana@example.com")
    assert named(calls, "user_logged_out") == [
        {"user": user, "session_id": second_id},
        {"user": user, "session_id": third_id},
        {"user": user, "session_id": None},
    ]
    assert first_id not in str(named(calls, "user_logged_out"))


def test_hook_token_refreshed_by_get_and_by_post(testapp, calls, ana):
    data = login(testapp)["data"]
    [logged_in] = named(calls, "user_logged_in")
    testapp.get("/api/v1/user/refresh-token", headers=bearer(data["token"]), status=201)
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": data["refresh_token"]},
                      status=201)
    expected = {"user": (ana, "ana@example.com"), "session_id": logged_in["session_id"]}
    assert named(calls, "token_refreshed") == [expected, expected]


def test_hook_refresh_reuse_detected_commits_although_the_answer_is_401(testapp, calls, ana):
    testapp.app.registry.pm.register(trace("vexpenses_refresh_reuse_detected"))
    first = login(testapp)["data"]["refresh_token"]
    [logged_in] = named(calls, "user_logged_in")
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": first}, status=201)
    testapp.post_json("/api/v1/user/refresh-token", {"refresh_token": first}, status=401)
    assert named(calls, "refresh_reuse_detected") == [
        {"user": (ana, "ana@example.com"), "session_id": logged_in["session_id"]}]
    assert traced(testapp) == ["trace@example.com"]


def test_hook_profile_viewed_cannot_change_the_response(testapp, calls, ana):
    class Meddler:
        @hookimpl
        def vexpenses_profile_viewed(self, user):
            return {"id": 0, "name": "Changed"}

    testapp.app.registry.pm.register(Meddler())
    token = login(testapp)["data"]["token"]
    data = testapp.get("/api/v1/user/me", headers=bearer(token)).json["data"]
    assert (data["id"], data["name"]) == (ana, "Ana Souza")
    assert named(calls, "profile_viewed") == [{"user": (ana, "ana@example.com")}]


def test_hook_users_listed_gets_the_filters_stripped(testapp, calls, ana):
    token = login(testapp)["data"]["token"]
    testapp.get("/api/v1/user", {"name": "  Ana ", "email": " "}, headers=bearer(token))
    assert named(calls, "users_listed") == [
        {"user": (ana, "ana@example.com"), "filters": {"name": "Ana", "email": None}}]
