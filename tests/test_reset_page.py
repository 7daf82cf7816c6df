"""The reset link opens a real page: driven end to end in headless Chromium.

Uses Debian's chromium at /usr/bin/chromium through Playwright (no browser
download). `.ci/run` and `make test` install it.
"""

import urllib.parse
import urllib.request

import pytest

from vexpenses_core import hookimpl
from vexpenses_core.testing import live_server

PASSWORD = "old password 1"
NEW = "a brand new password"


@pytest.fixture
def page_language():
    """vexpenses.language of the live app; a test parametrizes it to change it."""
    return "pt_BR"


@pytest.fixture
def live(make_testapp, page_language):
    """The app served by waitress on a free port, with its base URL set to match."""
    links = []

    class Catcher:
        @hookimpl
        def vexpenses_password_reset_requested(self, reset_url):
            links.append(reset_url)

    with live_server(lambda url: make_testapp(**{"vexpenses.base_url": url,
                                                 "vexpenses.language": page_language})) as testapp:
        testapp.app.registry.pm.register(Catcher(), name="catcher")
        testapp.links = links
        testapp.post_json("/api/v1/user/register", {
            "name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
        yield testapp


def request_link(live):
    live.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    live.app.registry.queue.drain()  # the link is made in a task
    link = live.links[-1]
    assert link.startswith(live.base_url + "/reset-password?")
    return link


def fill_and_submit(page, password, confirmation):
    page.fill("#password", password)
    page.fill("#password_confirmation", confirmation)
    with page.expect_response(lambda r: "/recover-password" in r.url):
        page.click("button[type=submit]")
    # the page writes its verdict once the answer is read: wait for the button again
    page.wait_for_function(
        "() => document.querySelector('#reset-form').hidden"
        " || !document.querySelector('button[type=submit]').disabled")
    return page.inner_text("#result"), page.get_attribute("#result", "class")


def test_reset_flow_in_a_real_browser(live, browser, tmp_path):
    link = request_link(live)
    page = browser.new_page()
    response = page.goto(link)
    assert response.status == 200
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.inner_text("#email") == "ana@example.com"

    # a typo in the confirmation is reported, and the link still works afterwards
    text, kind = fill_and_submit(page, NEW, NEW + "x")
    assert kind == "error" and "confirmation does not match" in text

    text, kind = fill_and_submit(page, NEW, NEW)
    assert kind == "success" and "password has been changed" in text
    assert page.is_hidden("#reset-form")
    page.screenshot(path=str(tmp_path / "reset-done.png"))
    page.close()

    live.post_json("/api/v1/user/authenticate",
                   {"email": "ana@example.com", "password": NEW}, status=201)
    live.post_json("/api/v1/user/authenticate",
                   {"email": "ana@example.com", "password": PASSWORD}, status=401)


def test_used_link_shows_a_clear_error(live, browser):
    link = request_link(live)
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    live.post_json("/api/v1/user/recover-password", {
        "token": token, "email": "ana@example.com", "password": NEW,
        "password_confirmation": NEW})
    page = browser.new_page()
    page.goto(link)
    text, kind = fill_and_submit(page, "yet another pass", "yet another pass")
    assert kind == "error" and "already been used" in text
    page.close()


def test_expired_link_shows_a_clear_error(live, browser):
    import datetime

    from vexpenses_core.models import PasswordReset

    link = request_link(live)
    session = live.app.registry.dbsession_factory()
    for reset in session.query(PasswordReset):
        reset.expires_at = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    session.commit()
    session.close()
    page = browser.new_page()
    page.goto(link)
    text, kind = fill_and_submit(page, NEW, NEW)
    assert kind == "error" and "expired" in text
    page.close()


def test_incomplete_link_says_so(live, browser):
    page = browser.new_page()
    page.goto(live.base_url + "/reset-password")
    assert "incomplete" in page.inner_text("#result")
    assert page.is_hidden("#reset-form")
    page.close()


def test_hostile_email_in_link_is_shown_as_text(live, browser):
    page = browser.new_page()
    hostile = urllib.parse.quote("<img src=x onerror=alert(1)>")
    page.goto(f"{live.base_url}/reset-password?token=x&email={hostile}")
    assert page.inner_text("#email") == "<img src=x onerror=alert(1)>"
    assert page.query_selector("#email img") is None
    page.close()


def test_reset_for_a_non_ascii_address_in_a_real_browser(live, browser):
    address = "böb@bücher.de"
    live.post_json("/api/v1/user/register", {
        "name": "Böb Müller", "email": address, "password": PASSWORD,
        "password_confirmation": PASSWORD, "birth_date": "1990-01-01"}, status=201)
    live.post_json("/api/v1/user/forgot-password", {"email": address}, status=200)
    live.app.registry.queue.drain()
    link = live.links[-1]
    # the query string carries the address percent-encoded, as UTF-8
    assert "email=b%C3%B6b%40b%C3%BCcher.de" in link

    page = browser.new_page()
    assert page.goto(link).status == 200
    assert page.inner_text("#email") == address
    text, kind = fill_and_submit(page, NEW, NEW)
    assert kind == "success" and "password has been changed" in text
    page.close()

    live.post_json("/api/v1/user/authenticate",
                   {"email": address, "password": NEW}, status=201)
    live.post_json("/api/v1/user/authenticate",
                   {"email": address, "password": PASSWORD}, status=401)


# -- languages ---------------------------------------------------------------------


def open_in(browser, url, locale, no_header=False):
    """A page opened in a fresh context whose locale sets Chromium's Accept-Language.

    With ``no_header`` the page itself is fetched without the header (Chromium
    always sends one, so urllib fetches it) and handed to the browser as is.
    """
    context = browser.new_context(locale=locale)
    page = context.new_page()
    if no_header:
        def without(route):
            with urllib.request.urlopen(route.request.url) as answer:  # no Accept-Language
                route.fulfill(status=answer.status, headers=dict(answer.headers),
                              body=answer.read())
        page.route("**/reset-password*", without)
    response = page.goto(url)
    return page, response


@pytest.mark.parametrize("locale, lang, title, mismatch, done", [
    ("en-US", "en", "Choose a new password",
     "The password field confirmation does not match.",
     "Your password has been changed. You can now log in with it."),
    ("pt-BR", "pt-BR", "Escolha uma nova senha",
     "A confirmação não é igual à nova senha.",
     "Sua senha foi alterada. Você já pode entrar com ela."),
])
def test_reset_page_speaks_the_browsers_language(live, browser, locale, lang, title,
                                                  mismatch, done):
    page, response = open_in(browser, request_link(live), locale=locale)
    assert response.headers["content-language"] == lang
    assert response.headers["vary"] == "Accept-Language"
    assert page.get_attribute("html", "lang") == lang
    assert page.title() == title and page.inner_text("h1") == title
    assert page.inner_text("button[type=submit]") == {"en": "Set password",
                                                      "pt-BR": "Salvar a senha"}[lang]
    # an error from the API, in the page's language
    text, kind = fill_and_submit(page, NEW, NEW + "x")
    assert (kind, text) == ("error", mismatch)
    text, kind = fill_and_submit(page, NEW, NEW)
    assert (kind, text) == ("success", done)
    page.context.close()


@pytest.mark.parametrize("page_language, lang", [("pt_BR", "pt-BR"), ("en", "en")])
@pytest.mark.parametrize("locale, no_header", [("de-DE", False), ("pt-BR", True)])
def test_reset_page_falls_back_to_the_setting(live, browser, locale, no_header, lang):
    # Accept-Language names none of the page's languages, or is not sent at all
    page, response = open_in(browser, live.base_url + "/reset-password", locale, no_header)
    assert response.headers["content-language"] == lang
    assert page.get_attribute("html", "lang") == lang
    assert page.inner_text("#result") == {
        "pt-BR": "Este link de redefinição de senha está incompleto. Use o link do seu e-mail.",
        "en": "This password reset link is incomplete. Please use the link from your e-mail.",
    }[lang]
    page.context.close()


def test_used_link_and_short_password_in_portuguese(live, browser):
    link = request_link(live)
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    page, _ = open_in(browser, link, locale="pt-PT")  # Portuguese, another region
    text, kind = fill_and_submit(page, "short", "short")
    assert (kind, text) == ("error", "A nova senha precisa ter pelo menos 8 caracteres.")
    live.post_json("/api/v1/user/recover-password", {
        "token": token, "email": "ana@example.com", "password": NEW,
        "password_confirmation": NEW})
    text, kind = fill_and_submit(page, "yet another pass", "yet another pass")
    assert (kind, text) == (
        "error", "Este link de redefinição de senha já foi usado. Peça um novo.")
    page.context.close()


def test_an_api_message_the_page_does_not_know_is_shown_as_sent(live, browser):
    page, _ = open_in(browser, live.base_url + "/reset-password?token=x&email=ana@example.com",
                      locale="pt-BR")
    page.route("**/recover-password", lambda route: route.fulfill(
        status=422, content_type="application/json",
        body='{"success": false, "message": "Validation failed.", '
             '"errors": {"token": ["Some new rule the page has no words for."]}}'))
    text, kind = fill_and_submit(page, NEW, NEW)
    assert (kind, text) == ("error", "Some new rule the page has no words for.")
    page.context.close()
