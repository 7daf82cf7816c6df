"""The account lifecycle's pages end to end (issue 12): each link is read from the
e-mail a real aiosmtpd server received, opened in headless Chromium, and the
flow finished in the page: /verify-email after registering, /confirm-email
after asking for a new address, and an import's invitation that sets the
password on /reset-password, which proves the address."""

import contextlib
import urllib.parse

import pytest
from vexpenses_mailer.testing import PASSWORD, html_links, links, register

from vexpenses_core.testing import bearer, live_server, make_user

TOKEN_ROUTES = ("/reset-password", "/verify-email", "/confirm-email", "token=")
NEW_ADDRESS = "ana.nova@example.org"


@contextlib.contextmanager
def serving(mail_app, **settings):
    """The app with the real mailer, served by waitress on a free port."""
    with live_server(lambda url: mail_app(**{"vexpenses.base_url": url, **settings})) as app:
        yield app


def delivered(live, count):
    """The first ``count`` messages the SMTP server accepted, once they all arrived."""
    assert live.sink.wait_for(count), f"{count} e-mails did not arrive"
    return live.sent()


def link_in(message, base_url, route):
    """The one link to ``route`` in the message, the same in both parts."""
    [link] = [url for url in links(message.text) if f"{route}?" in url]
    assert html_links(message.html) == [link]
    assert link.startswith(f"{base_url}{route}?token=")
    return link


def me(live, email, password=PASSWORD):
    token = live.post_json("/api/v1/user/authenticate",
                           {"email": email, "password": password}, status=201).json["data"]
    return live.get("/api/v1/user/me", headers=bearer(token["token"])).json["data"]


def click_through(browser, link, language="en-US"):
    """Open ``link``, press the page's button, and return the verdict's class and text."""
    context = browser.new_context(locale=language)
    page = context.new_page()
    try:
        assert page.goto(link).status == 200
        assert page.get_attribute("#status", "class") in (None, "")  # nothing sent on load
        page.click("#confirm")
        page.wait_for_function(
            "() => ['success', 'error'].includes(document.querySelector('#status').className)")
        return page.get_attribute("#status", "class"), page.inner_text("#status")
    finally:
        context.close()


def test_verify_email_from_the_delivered_link(mail_app, browser):
    with serving(mail_app, verification=True) as live:
        register(live, status=201)
        [verify] = [m for m in delivered(live, 2) if "/verify-email?" in m.text]
        assert verify.rcpt_tos == ["ana@example.com"]
        link = link_in(verify, live.base_url, "/verify-email")
        assert me(live, "ana@example.com")["email_verified_at"] is None

        verdict, text = click_through(browser, link)
        assert verdict == "success", text
        assert me(live, "ana@example.com")["email_verified_at"] is not None

        # the link works once: a second click is refused, in the page
        verdict, text = click_through(browser, link)
        assert verdict == "error"


def test_confirm_email_from_the_delivered_link(mail_app, browser):
    with serving(mail_app) as live:
        register(live, status=201)
        delivered(live, 1)  # the welcome
        token = live.post_json("/api/v1/user/authenticate",
                               {"email": "ana@example.com", "password": PASSWORD}).json["data"]
        live.post_json("/api/v1/user/me/email",
                       {"email": NEW_ADDRESS, "current_password": PASSWORD},
                       headers=bearer(token["token"]), status=202)
        messages = delivered(live, 3)[1:]
        [confirm] = [m for m in messages if m.rcpt_tos == [NEW_ADDRESS]]
        [notice] = [m for m in messages if m.rcpt_tos == ["ana@example.com"]]
        link = link_in(confirm, live.base_url, "/confirm-email")

        # the old address was told, with no link to any of the token routes
        assert "a***@example.org" in notice.text and NEW_ADDRESS not in notice.text
        for url in links(notice.text) + html_links(notice.html):
            assert not any(route in url for route in TOKEN_ROUTES), url
        assert me(live, "ana@example.com")["email"] == "ana@example.com"  # not yet

        verdict, text = click_through(browser, link, language="pt-BR")
        assert verdict == "success", text
        moved = me(live, NEW_ADDRESS)
        assert moved["email"] == NEW_ADDRESS and moved["email_verified_at"] is not None
        live.post_json("/api/v1/user/authenticate",
                       {"email": "ana@example.com", "password": PASSWORD}, status=401)


@pytest.fixture
def import_live(mail_app, tmp_path):
    with serving(mail_app, **{"vexpenses.plugins": "mailer csv_import",
                              "vexpenses.upload_dir": str(tmp_path / "uploads")}) as live:
        yield live


def test_an_imported_user_sets_a_password_from_the_invitation_and_is_verified(
        import_live, browser):
    live = import_live
    _, admin = make_user(live.app.registry, email="root@example.com", is_admin=True)
    csv = b"Nome,E-mail,Data de nascimento\nBia Souza,bia@example.com,1991-02-03\n"
    upload = live.post("/api/v1/user/upload", upload_files=[("file", "people.csv", csv)],
                       headers=bearer(admin), status=201).json["data"]
    assert upload["send_invitations"] is True  # an admin's upload invites

    # the invitation to Bia, and the summary to the admin
    messages = delivered(live, 2)
    [invitation] = [m for m in messages if m.rcpt_tos == ["bia@example.com"]]
    link = link_in(invitation, live.base_url, "/reset-password")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))
    assert query["email"] == "bia@example.com"

    page = browser.new_page()
    try:
        assert page.goto(link).status == 200
        assert page.inner_text("#email") == "bia@example.com"
        page.fill("#password", "bia's own password")
        page.fill("#password_confirmation", "bia's own password")
        with page.expect_response(lambda r: "/recover-password" in r.url) as answer:
            page.click("button[type=submit]")
        assert answer.value.status == 200
        page.wait_for_function("() => document.querySelector('#reset-form').hidden")
    finally:
        page.close()

    # the link came to her address: setting the password proved it
    bia = me(live, "bia@example.com", "bia's own password")
    assert bia["email_verified_at"] is not None
