"""Issue 9, class 6: nothing the client sends as its Host is echoed back, and
no cache keeps an API answer."""

import pytest

from vexpenses_core.testing import (
    HOSTILE_HOSTS,
    assert_not_reflected,
    hostile_host_environ,
    make_user,
)

PASSWORD = "a password 123"


@pytest.fixture
def ana(testapp):
    user_id, token = make_user(testapp.app.registry, email="ana@example.com",
                               password=PASSWORD)
    for n in range(11):  # two pages of users, so every paginator link is filled
        make_user(testapp.app.registry, email=f"user{n}@example.com")
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_pages_documents_and_links_never_carry_the_host(testapp, ana, host):
    environ = hostile_host_environ(host)
    for path in ("/reset-password?token=x&email=a%40example.com", "/api/v1/docs",
                 "/api/v1/docs/static/init.js", "/api/v1/openapi.json"):
        assert_not_reflected(testapp.get(path, extra_environ=environ))
    users = testapp.get("/api/v1/user/?page=2&name=Souza", headers=ana, extra_environ=environ)
    assert_not_reflected(users)
    page = users.json["data"]
    assert page["path"] == "http://localhost/api/v1/user/"
    assert page["first_page_url"] == "http://localhost/api/v1/user/?name=Souza&page=1"
    assert all(link["url"] is None or link["url"].startswith("http://localhost/api/v1/user/?")
               for link in page["links"])
    cursor = testapp.get("/api/v1/user/?cursor=", headers=ana, extra_environ=environ)
    assert_not_reflected(cursor)
    assert cursor.json["data"]["next_page_url"].startswith("http://localhost/api/v1/user/?")


def test_paginator_links_are_built_from_base_url(make_testapp):
    app = make_testapp(**{"vexpenses.base_url": "https://api.example.com/"})
    _, token = make_user(app.app.registry)
    page = app.get("/api/v1/user?page=1", headers={"Authorization": f"Bearer {token}"},
                   extra_environ={"HTTP_HOST": "internal-name:6543"}).json["data"]
    assert page["first_page_url"] == "https://api.example.com/api/v1/user?page=1"


def test_openapi_servers_entry_is_relative_to_where_the_app_is_mounted(testapp):
    # Relative: it works at localhost, 127.0.0.1 or the public name alike.
    assert testapp.get("/api/v1/openapi.json").json["servers"] == [{"url": "/"}]
    mounted = testapp.get("/api/v1/openapi.json", extra_environ={"SCRIPT_NAME": "/accounts"})
    assert mounted.json["servers"] == [{"url": "/accounts"}]


def test_docs_page_has_the_page_headers_and_escapes_what_it_embeds(testapp):
    page = testapp.get("/api/v1/docs", extra_environ={"SCRIPT_NAME": '/a"><b'})
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert '"><b' not in page.text and "/a&quot;&gt;&lt;b/api/v1/openapi.json" in page.text


def test_docs_page_works_under_its_csp_in_a_real_browser(make_testapp, browser):
    from vexpenses_core.testing import live_server

    with live_server(lambda url: make_testapp(**{"vexpenses.base_url": url})) as live:
        page = browser.new_page()
        violations = []
        page.on("console", lambda m: violations.append(m.text)
                if "Content Security Policy" in m.text else None)
        page.goto(live.base_url + "/api/v1/docs")
        page.wait_for_selector(".swagger-ui .info .title")
        assert "vexpenses API" in page.inner_text(".swagger-ui .info .title")
        # "Try it out" would call the relative server: this very origin.
        assert page.locator(".servers select option").first.inner_text() == "/"
        assert violations == []
        page.close()


# -- Cache-Control: no-store --------------------------------------------------


def no_store_routes(app, headers):
    """Every core route that answers with a token or account data, and some errors."""
    login = app.post_json("/api/v1/user/authenticate",
                          {"email": "ana@example.com", "password": PASSWORD}, status=201)
    refresh = login.json["data"]["refresh_token"]
    yield login
    yield app.post_json("/api/v1/user/refresh-token", {"refresh_token": refresh}, status=201)
    yield app.get("/api/v1/user/refresh-token", headers=headers, status="*")
    yield app.get("/api/v1/user/me", headers=headers)
    yield app.get("/api/v1/user/", headers=headers)
    yield app.get("/api/v1/user/?cursor=", headers=headers)
    yield app.get("/api/v1/user/sessions", headers=headers)
    yield app.post_json("/api/v1/user/forgot-password", {"email": "ana@example.com"})
    yield app.post_json("/api/v1/user/register", {"email": "ana@example.com"}, status=422)
    yield app.get("/api/v1/user/me", status=401)
    yield app.get("/api/v1/nothing-here", status=404)
    yield app.get("/api/v1/openapi.json")


def test_every_api_answer_is_no_store(testapp, ana):
    for response in no_store_routes(testapp, ana):
        assert response.headers.get("Cache-Control") == "no-store", response.request.url


def test_docs_assets_keep_their_own_cache_policy(testapp):
    asset = testapp.get("/api/v1/docs/static/swagger-ui.css")
    assert asset.headers["Cache-Control"] == "max-age=3600"
