"""Forgot and recover password through the API, and the rate limits on both."""

import datetime
import time
import urllib.parse

import pytest

from vexpenses_core.testing import make_user

PASSWORD = "old password 1"
NEW = "brand new password"


@pytest.fixture
def reset_links(testapp):
    """The reset URLs handed to the hook, as the mailer plugin would get them."""
    from vexpenses_core import hookimpl

    links = []

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, user, reset_url):
            links.append(reset_url)

    testapp.app.registry.pm.register(Catcher(), name="catcher")
    yield links
    testapp.app.registry.pm.unregister(name="catcher")


@pytest.fixture
def user(testapp):
    user_id, token = make_user(testapp.app.registry, email="ana@example.com", password=PASSWORD)
    return {"id": user_id, "token": token}


def forgot(app, email="ana@example.com", status=200):
    res = app.post_json("/api/v1/user/forgot-password", {"email": email}, status=status)
    app.app.registry.queue.drain()  # the link is made in a task
    return res


def link_params(url):
    query = urllib.parse.parse_qs(urllib.parse.urlparse(url).query)
    return query["token"][0], query["email"][0]


def recover(app, token, email, password=NEW, confirmation=None, status=200, in_query=False):
    body = {"password": password, "password_confirmation": confirmation or password}
    if in_query:
        url = "/api/v1/user/recover-password?" + urllib.parse.urlencode(
            {"token": token, "email": email})
    else:
        url = "/api/v1/user/recover-password"
        body.update(token=token, email=email)
    return app.post_json(url, body, status=status)


def login(app, password, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": "ana@example.com", "password": password}, status=status)


def test_forgot_answers_the_same_for_known_and_unknown_emails(testapp, user, reset_links):
    known = forgot(testapp, "ana@example.com")
    unknown = forgot(testapp, "nobody@example.com")
    assert known.json == unknown.json == {
        "status": True, "message": "Password reset link sent successfully", "data": None}
    assert len(reset_links) == 1


def test_reset_link_points_at_the_page_with_token_and_email(testapp, user, reset_links):
    forgot(testapp)
    url = reset_links[0]
    assert url.startswith("http://localhost/reset-password?token=")
    token, email = link_params(url)
    assert email == "ana@example.com" and len(token) >= 40


def test_full_reset_ends_sessions_and_sets_password(testapp, user, reset_links):
    forgot(testapp)
    token, email = link_params(reset_links[0])
    res = recover(testapp, token, email)
    assert res.json["message"] == "Password reset successfully"
    # the old session is over, the old password too
    testapp.get("/api/v1/user/me", headers={"Authorization": f"Bearer {user['token']}"},
                status=401)
    login(testapp, PASSWORD, status=401)
    login(testapp, NEW)


def test_token_and_email_may_come_in_the_query_string(testapp, user, reset_links):
    forgot(testapp)
    token, email = link_params(reset_links[0])
    recover(testapp, token, email, in_query=True)
    login(testapp, NEW)


def test_reset_token_is_single_use(testapp, user, reset_links):
    forgot(testapp)
    token, email = link_params(reset_links[0])
    recover(testapp, token, email)
    res = recover(testapp, token, email, password="another password", status=422)
    assert "already been used" in res.json["errors"]["token"][0]


def test_reset_token_expires(make_testapp):
    app = make_testapp(**{"vexpenses.reset_token_minutes": "1"})
    make_user(app.app.registry, email="ana@example.com", password=PASSWORD)
    links = []
    from vexpenses_core import hookimpl

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, reset_url):
            links.append(reset_url)

    app.app.registry.pm.register(Catcher())
    forgot(app)
    token, email = link_params(links[0])
    # age the token past its lifetime
    from vexpenses_core.models import PasswordReset

    session = app.app.registry.dbsession_factory()
    for reset in session.query(PasswordReset):
        reset.expires_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
    session.commit()
    session.close()
    res = recover(app, token, email, status=422)
    assert "expired" in res.json["errors"]["token"][0]


def test_new_request_retires_the_previous_link(testapp, user, reset_links):
    forgot(testapp)
    forgot(testapp)
    first, email = link_params(reset_links[0])
    second, _ = link_params(reset_links[1])
    recover(testapp, first, email, status=422)
    recover(testapp, second, email)


def test_mismatched_confirmation_is_422_and_keeps_the_token(testapp, user, reset_links):
    forgot(testapp)
    token, email = link_params(reset_links[0])
    res = recover(testapp, token, email, confirmation="something else", status=422)
    assert res.json["errors"]["password"] == ["The password field confirmation does not match."]
    recover(testapp, token, email)  # still usable after a typo


@pytest.mark.parametrize("token,email", [
    ("nope", "ana@example.com"), ("", "ana@example.com"), (None, "ana@example.com"),
    ("x" * 500, "ana@example.com"),
])
def test_bad_tokens_are_422(testapp, user, token, email):
    body = {"email": email, "password": NEW, "password_confirmation": NEW}
    if token is not None:
        body["token"] = token
    res = testapp.post_json("/api/v1/user/recover-password", body, status=422)
    assert "token" in res.json["errors"]


def test_token_for_another_email_is_refused(testapp, user, reset_links):
    make_user(testapp.app.registry, email="bia@example.com", password=PASSWORD)
    forgot(testapp)
    token, _ = link_params(reset_links[0])
    res = recover(testapp, token, "bia@example.com", status=422)
    assert res.json["errors"]["token"] == ["This password reset token is invalid."]


def test_completed_reset_clears_the_login_delay(testapp, user, reset_links):
    for _ in range(4):  # three free failures, then one that starts a delay
        login(testapp, "wrong password", status=401)
    login(testapp, PASSWORD, status=429)
    forgot(testapp)
    token, email = link_params(reset_links[0])
    recover(testapp, token, email)
    login(testapp, NEW)


def test_forgot_with_bad_email_is_422(testapp):
    forgot(testapp, "not an email", status=422)
    testapp.post_json("/api/v1/user/forgot-password", {}, status=422)


# -- rate limits ------------------------------------------------------------------------


def test_forgot_password_is_limited_per_email(testapp, user):
    for _ in range(3):
        forgot(testapp)
    res = forgot(testapp, status=429)
    assert int(res.headers["Retry-After"]) > 0
    assert res.json["status"] is False
    # unknown e-mails are limited the same way, so the limit reveals nothing
    for _ in range(3):
        forgot(testapp, "ghost@example.com")
    forgot(testapp, "ghost@example.com", status=429)


def test_forgot_password_is_limited_per_ip(make_testapp):
    app = make_testapp(**{"vexpenses.ratelimit.forgot_ip": "2 per hour"})
    forgot(app, "a@example.com")
    forgot(app, "b@example.com")
    forgot(app, "c@example.com", status=429)
    # another client is not affected
    app.post_json("/api/v1/user/forgot-password", {"email": "d@example.com"},
                  extra_environ={"REMOTE_ADDR": "10.0.0.9"})


def test_login_is_limited_per_ip(make_testapp):
    app = make_testapp(**{"vexpenses.ratelimit.login_ip": "3 per minute"})
    for i in range(3):
        app.post_json("/api/v1/user/authenticate",
                      {"email": f"u{i}@example.com", "password": "whatever1"}, status=401)
    res = app.post_json("/api/v1/user/authenticate",
                        {"email": "u9@example.com", "password": "whatever1"}, status=429)
    assert "Retry-After" in res.headers


def test_login_is_limited_per_account(make_testapp):
    app = make_testapp(**{"vexpenses.ratelimit.login_account": "2 per minute",
                          "vexpenses.ratelimit.login_free_failures": "100"})
    for ip in ("10.0.0.1", "10.0.0.2"):
        app.post_json("/api/v1/user/authenticate", {"email": "x@example.com", "password": "p" * 8},
                      extra_environ={"REMOTE_ADDR": ip}, status=401)
    app.post_json("/api/v1/user/authenticate", {"email": "X@example.com", "password": "p" * 8},
                  extra_environ={"REMOTE_ADDR": "10.0.0.3"}, status=429)


def test_repeated_failures_escalate_the_delay(testapp, user):
    for _ in range(3):  # the free failures
        login(testapp, "wrong password", status=401)
    login(testapp, "wrong password", status=401)  # the 4th failure starts a 1 s delay
    res = login(testapp, PASSWORD, status=429)  # even the right password must wait
    assert res.headers["Retry-After"] == "1"
    time.sleep(1.1)
    login(testapp, "wrong password", status=401)  # 5th failure: now 2 s
    res = login(testapp, PASSWORD, status=429)
    assert res.headers["Retry-After"] == "2"
    time.sleep(2.1)
    login(testapp, PASSWORD)  # success resets the count
    login(testapp, "wrong password", status=401)
    login(testapp, PASSWORD)


def test_hook_password_reset_completed_counts_the_sessions_ended(testapp, user, reset_links):
    from vexpenses_core import hookimpl

    completed = []

    class Listener:
        @hookimpl
        def vexpenses_password_reset_completed(self, user, sessions_ended):
            completed.append((user.email, sessions_ended))

    testapp.app.registry.pm.register(Listener())
    login(testapp, PASSWORD)  # a second session, besides the fixture's
    forgot(testapp)
    recover(testapp, *link_params(reset_links[0]))
    assert completed == [("ana@example.com", 2)]
