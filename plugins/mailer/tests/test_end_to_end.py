"""End to end with the real mailer: the reset link read from the delivered e-mail,
opened in headless Chromium; and a real `vexpenses worker` sending through Redis."""

import urllib.parse

import pytest
from sqlalchemy import select
from vexpenses_mailer.models import MailDelivery
from vexpenses_mailer.testing import PASSWORD, html_links, links, register

from vexpenses_core.testing import live_server, run_workers, wait_for

NEW = "uma senha bem nova"


@pytest.fixture
def live(mail_app):
    """The app with the real mailer, served by waitress on a free port."""
    with live_server(lambda url: mail_app(**{"vexpenses.base_url": url})) as app:
        yield app


def reset_link(message, base_url):
    [link] = [url for url in links(message.text) if "/reset-password?" in url]
    assert html_links(message.html) == [link]
    assert link.startswith(base_url + "/reset-password?token=")
    return link


def test_reset_flow_from_the_delivered_email_in_a_real_browser(live, browser):
    register(live, status=201)
    live.sent()  # the welcome e-mail first: tasks run side by side
    live.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"}, status=200)
    assert live.sink.wait_for(2)
    reset = live.sent()[-1]
    assert reset["Subject"] == "Redefinição de senha do vexpenses"
    link = reset_link(reset, live.base_url)

    page = browser.new_page()
    assert page.goto(link).status == 200
    assert page.inner_text("#email") == "ana@example.com"
    page.fill("#password", NEW)
    page.fill("#password_confirmation", NEW)
    with page.expect_response(lambda r: "/recover-password" in r.url) as answer:
        page.click("button[type=submit]")
    assert answer.value.status == 200
    page.wait_for_function("() => document.querySelector('#reset-form').hidden")
    assert "password has been changed" in page.inner_text("#result")
    page.close()

    live.post_json("/api/v1/user/authenticate",
                   {"email": "ana@example.com", "password": NEW}, status=201)
    live.post_json("/api/v1/user/authenticate",
                   {"email": "ana@example.com", "password": PASSWORD}, status=401)
    assert live.sink.wait_for(3)
    # in English: the browser that set the password sent Accept-Language: en-US
    assert live.sent()[-1]["Subject"] == "Your vexpenses password was changed"


def test_a_real_worker_delivers_through_redis(mail_app, redis_url, tmp_path):
    app = mail_app(**{"vexpenses.redis_url": redis_url})
    sink = app.sink
    env = {
        "VEXPENSES_MAILER_BACKEND": "smtp",
        "VEXPENSES_SMTP_URL": f"smtp://127.0.0.1:{sink.port}",
        "VEXPENSES_MAIL_FROM": "Equipe vexpenses <no-reply@vexpenses.test>",
    }
    with run_workers(app.registry.settings, tmp_path, count=1, **env):
        register(app, status=201)
        app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
        assert sink.wait_for(2, timeout=30), "the worker did not deliver"
    welcome, reset = sorted(sink.messages, key=lambda m: m["Subject"])
    assert welcome["Subject"].startswith("Bem-vindo(a)") and welcome.rcpt_tos == [
        "ana@example.com"]
    # the sealed link crossed Redis and was opened by the worker's own process
    link = reset_link(reset, "http://localhost")
    token = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))["token"]
    assert token not in (tmp_path / "worker.log").read_text()

    def rows():
        session = app.registry.dbsession_factory()
        try:
            return session.scalars(select(MailDelivery).order_by(MailDelivery.id)).all()
        finally:
            session.close()

    assert wait_for(lambda: [r.status for r in rows()] == ["sent", "sent"], 10)
    assert sorted(r.kind for r in rows()) == ["reset", "welcome"]
