"""Internationalised addresses (issue 9, class 2): a user whose address is not
ASCII can register, log in, ask for a reset link and set a new password through
it, on both databases and with the real Redis behind the rate limits."""

import urllib.parse

import pytest

from vexpenses_core import hookimpl

PASSWORD = "old password 1"
NEW = "brand new password"

# Local part, domain, or both outside ASCII, in several scripts.
ADDRESSES = [
    "böb@example.com",
    "bob@bücher.de",
    "jöhn.dœ@bücher.de",
    "用户@例子.广告",
    "θσερ@εχαμπλε.ψομ",
    "чебурашка@ящик-с-апельсинами.рф",
    "अजय@डाटा.भारत",
]


@pytest.fixture
def app(make_testapp, redis_url):
    """The app on real Redis (the rate limits key on the address), catching reset links."""
    testapp = make_testapp(**{"vexpenses.redis_url": redis_url,
                              "vexpenses.tasks.broker": "inprocess"})
    links = []

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, user, reset_url):
            links.append(reset_url)

    testapp.app.registry.pm.register(Catcher(), name="catcher")
    testapp.links = links
    return testapp


def forgot(app, email, status=200):
    answer = app.post_json("/api/v1/user/forgot-password", {"email": email}, status=status)
    app.app.registry.queue.drain()  # in case the link is made in a task
    return answer


def register(app, email, password=PASSWORD):
    return app.post_json("/api/v1/user/register", {
        "name": "Böb Müller", "email": email, "password": password,
        "password_confirmation": password, "birth_date": "1990-01-01"}, status=201)


def login(app, email, password, status=201):
    return app.post_json("/api/v1/user/authenticate",
                         {"email": email, "password": password}, status=status)


def link_params(url):
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    return query["token"][0], query["email"][0]


@pytest.mark.parametrize("address", ADDRESSES)
@pytest.mark.parametrize("in_query", [False, True], ids=["body", "query"])
def test_register_login_reset_and_login_again(app, address, in_query):
    stored = register(app, address).json["data"]["email"]
    login(app, address, PASSWORD)

    assert forgot(app, address).json == {"status": True, "data": None,
                           "message": "Password reset link sent successfully"}
    [link] = app.links
    token, email = link_params(link)
    assert email == stored
    # the link is plain ASCII: the address is percent-encoded UTF-8
    assert link.isascii() and urllib.parse.quote(stored, safe="") in link

    body = {"password": NEW, "password_confirmation": NEW}
    if in_query:
        url = "/api/v1/user/recover-password?" + urllib.parse.urlencode(
            {"token": token, "email": email})
    else:
        url = "/api/v1/user/recover-password"
        body.update(token=token, email=email)
    answer = app.post_json(url, body, status=200)
    assert answer.json["message"] == "Password reset successfully"

    login(app, address, NEW)
    login(app, address, PASSWORD, status=401)


# What an attacker may send to recover-password with a real token of böb's:
# other people's addresses that look like his, and strings no address holds.
HOSTILE_EMAILS = [
    "bob@example.com",              # the ASCII look-alike
    "böb@examplé.com",
    "bõb@example.com",
    "bøb@example.com",
    "böb@exаmple.com",              # Cyrillic а in the domain
    "b\u00f6b\u200b@example.com",   # zero-width space
    "b\ud800b@example.com",         # a lone surrogate (valid in JSON, not in UTF-8)
    "böb@example.com\u0000",
    "böb@" + "ü" * 300 + ".de",
    "ö" * 5000,
    "",
]


@pytest.mark.parametrize("email", HOSTILE_EMAILS)
def test_a_token_with_another_address_is_refused_never_a_crash(app, email):
    register(app, "böb@example.com")
    forgot(app, "böb@example.com")
    token, _ = link_params(app.links[-1])

    answer = app.post_json("/api/v1/user/recover-password", {
        "token": token, "email": email, "password": NEW, "password_confirmation": NEW,
    }, status=422)
    assert answer.json["status"] is False
    # the token's own address is never echoed back: only which field failed
    assert set(answer.json["errors"]) <= {"token", "email", "body"}
    login(app, "böb@example.com", PASSWORD)  # untouched


@pytest.mark.parametrize("email", HOSTILE_EMAILS[:-1])
def test_forgot_with_hostile_non_ascii_input_never_crashes(app, email):
    register(app, "böb@example.com")
    answer = forgot(app, email, status="*")
    assert answer.status_int in (200, 422)
    assert answer.content_type == "application/json"
    assert app.links == []
