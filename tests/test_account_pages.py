"""The verification and e-mail change links open real pages: /verify-email and
/confirm-email, driven in headless Chromium, in pt_BR and en.

The pages send the link's token only when their button is clicked: opening
the link (as a mail scanner does) uses nothing.
"""

import datetime
import urllib.parse

import pytest
from sqlalchemy import select, update

from vexpenses_core import hookimpl
from vexpenses_core.models import AccountToken, User
from vexpenses_core.testing import live_server

PASSWORD = "old password 1"
EN, PT = "en-US", "pt-BR"


@pytest.fixture
def live(make_testapp):
    """The app served by waitress, with Ana registered; the links the hooks got."""
    links = {"verify": [], "confirm": []}

    class Catcher:
        @hookimpl
        def vexpenses_email_verification_requested(self, verify_url):
            links["verify"].append(verify_url)

        @hookimpl
        def vexpenses_email_change_requested(self, confirm_url):
            links["confirm"].append(confirm_url)

    with live_server(lambda url: make_testapp(**{"vexpenses.base_url": url})) as testapp:
        testapp.app.registry.pm.register(Catcher(), name="catcher")
        testapp.links = links
        testapp.post_json("/api/v1/user/register", {
            "name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
        yield testapp


def stored(live, email):
    db = live.app.registry.dbsession_factory()
    try:
        return db.scalars(select(User).where(User.email == email)).one_or_none()
    finally:
        db.close()


def unused_tokens(live):
    db = live.app.registry.dbsession_factory()
    try:
        return len(db.scalars(select(AccountToken).where(AccountToken.used_at.is_(None))).all())
    finally:
        db.close()


def verify_link(live):
    link = live.links["verify"][-1]
    assert link.startswith(live.base_url + "/verify-email?token=")
    return link


def confirm_link(live, new_email="ana.new@example.com"):
    token = live.post_json("/api/v1/user/authenticate", {
        "email": "ana@example.com", "password": PASSWORD}).json["data"]["token"]
    live.post_json("/api/v1/user/me/email",
                   {"email": new_email, "current_password": PASSWORD},
                   headers={"Authorization": f"Bearer {token}"}, status=202)
    link = live.links["confirm"][-1]
    assert link.startswith(live.base_url + "/confirm-email?token=")
    return link


def token_of(link):
    return urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]


def open_in(browser, url, locale):
    """The page in a fresh context whose locale sets Accept-Language; its API calls."""
    context = browser.new_context(locale=locale)
    page = context.new_page()
    page.api_calls = []
    page.on("request", lambda r: page.api_calls.append(r.url) if "/api/" in r.url else None)
    response = page.goto(url)
    return page, response


def click(page):
    """Click the button, and wait for the page's verdict: ``(class, text)`` of #status."""
    with page.expect_response(lambda r: "/api/v1/user/" in r.url):
        page.click("#confirm")
    page.wait_for_selector("#status.success, #status.error")
    return page.get_attribute("#status", "class"), page.inner_text("#status")


def assert_page_headers(response, lang):
    headers = response.headers
    assert response.status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-language"] == lang
    assert headers["vary"] == "Accept-Language"


# -- /verify-email ---------------------------------------------------------------------------


@pytest.mark.parametrize("locale, lang, title, button, done", [
    (EN, "en", "Verify your e-mail address", "Verify my address",
     "Your e-mail address is verified. Thank you!"),
    (PT, "pt-BR", "Confirme seu endereço de e-mail", "Confirmar meu endereço",
     "Seu endereço de e-mail foi confirmado. Obrigado!"),
])
def test_verify_page_verifies_on_click(live, browser, locale, lang, title, button, done):
    page, response = open_in(browser, verify_link(live), locale)
    assert_page_headers(response, lang)
    assert page.get_attribute("html", "lang") == lang
    assert page.title() == title and page.inner_text("h1") == title
    assert page.inner_text("#confirm") == button
    # opening the link used nothing: no call to the API, the token still unused
    assert page.api_calls == [] and unused_tokens(live) == 1
    assert stored(live, "ana@example.com").email_verified_at is None
    assert click(page) == ("success", done)
    assert page.is_hidden("#confirm")
    assert stored(live, "ana@example.com").email_verified_at is not None
    page.context.close()


@pytest.mark.parametrize("locale, used, expired", [
    (EN, "This e-mail verification link has already been used.",
     "This e-mail verification link has expired. Please ask for a new one."),
    (PT, "Este link de verificação já foi usado.",
     "Este link de verificação expirou. Peça um novo."),
])
def test_verify_page_explains_a_used_or_expired_link(live, browser, locale, used, expired):
    link = verify_link(live)
    live.post_json("/api/v1/user/verify-email", {"token": token_of(link)}, status=200)
    page, _ = open_in(browser, link, locale)
    assert click(page) == ("error", used)
    assert page.is_enabled("#confirm")
    page.context.close()

    # unverified again, a new link, and that one too old
    db = live.app.registry.dbsession_factory()
    db.execute(update(User).values(email_verified_at=None))
    db.commit()
    live.post_json("/api/v1/user/verify-email/resend", {"email": "ana@example.com"},
                   status=202)
    live.app.registry.queue.drain()
    assert verify_link(live) != link
    db.execute(update(AccountToken).values(
        expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)))
    db.commit()
    db.close()
    page, _ = open_in(browser, verify_link(live), locale)
    assert click(page) == ("error", expired)
    page.context.close()


# -- /confirm-email --------------------------------------------------------------------------


@pytest.mark.parametrize("locale, lang, title, button, done", [
    (EN, "en", "Confirm your new e-mail address", "Confirm the new address",
     "Your e-mail address has been changed. Log in with the new address from now on."),
    (PT, "pt-BR", "Confirme seu novo endereço de e-mail", "Confirmar o novo endereço",
     "Seu endereço de e-mail foi alterado. A partir de agora, entre com o novo endereço."),
])
def test_confirm_page_changes_the_address_on_click(live, browser, locale, lang, title, button,
                                                   done):
    page, response = open_in(browser, confirm_link(live), locale)
    assert_page_headers(response, lang)
    assert page.get_attribute("html", "lang") == lang
    assert page.title() == title and page.inner_text("h1") == title
    assert page.inner_text("#confirm") == button
    assert page.api_calls == []
    assert stored(live, "ana.new@example.com") is None
    assert click(page) == ("success", done)
    assert page.is_hidden("#confirm")
    assert stored(live, "ana@example.com") is None
    assert stored(live, "ana.new@example.com").email_verified_at is not None
    page.context.close()


@pytest.mark.parametrize("locale, taken, used", [
    (EN, "The email has already been taken.", "This e-mail change link has already been used."),
    (PT, "Este endereço de e-mail já é usado por outra conta.",
     "Este link de confirmação já foi usado."),
])
def test_confirm_page_explains_a_taken_address_and_a_used_link(live, browser, locale, taken,
                                                              used):
    link = confirm_link(live)
    live.post_json("/api/v1/user/register", {
        "name": "Someone Else", "email": "ana.new@example.com", "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
    page, _ = open_in(browser, link, locale)
    assert click(page) == ("error", taken)
    assert stored(live, "ana@example.com") is not None
    page.context.close()

    link = confirm_link(live, "ana.other@example.com")
    live.post_json("/api/v1/user/confirm-email", {"token": token_of(link)}, status=200)
    page, _ = open_in(browser, link, locale)
    assert click(page) == ("error", used)
    page.context.close()


# -- both ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path, locale, message", [
    ("/verify-email", EN,
     "This verification link is incomplete. Please use the link from your e-mail."),
    ("/verify-email", PT, "Este link de verificação está incompleto. Use o link do seu e-mail."),
    ("/confirm-email", EN,
     "This confirmation link is incomplete. Please use the link from your e-mail."),
    ("/confirm-email", PT,
     "Este link de confirmação está incompleto. Use o link do seu e-mail."),
])
def test_a_link_without_a_token_says_so(live, browser, path, locale, message):
    page, response = open_in(browser, live.base_url + path, locale)
    assert response.status == 200
    assert page.get_attribute("#status", "class") == "error"
    assert page.inner_text("#status") == message
    assert page.is_hidden("#confirm")
    page.context.close()


@pytest.mark.parametrize("path", ["/verify-email", "/confirm-email"])
def test_an_api_message_the_page_does_not_know_is_shown_as_sent(live, browser, path):
    page, _ = open_in(browser, f"{live.base_url}{path}?token=x", PT)
    page.route("**/api/v1/user/**", lambda route: route.fulfill(
        status=429, content_type="application/json", headers={"Retry-After": "30"},
        body='{"status": false, "message": "Too many attempts.", '
             '"errors": "Too many attempts. Please try again in 30 seconds."}'))
    assert click(page) == ("error", "Too many attempts. Please try again in 30 seconds.")
    page.context.close()


@pytest.mark.parametrize("path", ["/verify-email", "/confirm-email"])
def test_a_hostile_token_is_sent_as_data(live, browser, path):
    hostile = urllib.parse.quote("<img src=x onerror=alert(1)>")
    page, _ = open_in(browser, f"{live.base_url}{path}?token={hostile}", EN)
    kind, text = click(page)
    assert kind == "error" and "invalid" in text
    assert page.query_selector("img") is None
    page.context.close()
