"""The interactive API page (/api/v1/docs) in headless Chromium: the core's sections
come first, and "Try it out" calls the host the page was opened at.

The app's base URL names localhost while the browser opens 127.0.0.1, as a
newcomer does who copies the address pserve prints: a servers entry fixed to
the base URL would send "Try it out" to another origin, which fails as CORS.
"""

import pytest

from vexpenses_core.testing import live_server

PLUGINS = "csv_import audit_log mailer hello"


@pytest.fixture
def live(make_testapp):
    def make(url):
        other_host = url.replace("127.0.0.1", "localhost")
        return make_testapp(**{"vexpenses.plugins": PLUGINS, "vexpenses.base_url": other_host})

    with live_server(make) as testapp:
        yield testapp


def test_the_document_lists_the_core_tags_first(testapp):
    app = testapp.app
    tags = [tag["name"] for tag in app.registry.openapi_document["tags"]]
    assert tags[:2] == ["accounts", "meta"]
    used = {tag for operations in app.registry.openapi_document["paths"].values()
            for operation in operations.values() for tag in operation["tags"]}
    assert set(tags) == used


def test_the_page_shows_the_core_first_and_tries_requests_where_it_was_opened(live, browser):
    page = browser.new_page()
    page.goto(f"{live.base_url}/api/v1/docs")
    page.wait_for_selector("h3.opblock-tag")
    sections = [tag.get_attribute("data-tag") for tag in page.query_selector_all("h3.opblock-tag")]
    assert sections[:2] == ["accounts", "meta"]
    assert {"csv import", "audit_log", "mailer", "hello"} <= set(sections[2:])

    operation = page.locator("#operations-meta-get_api_v1_openapi_json")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_response(lambda r: r.url.endswith("/api/v1/openapi.json")
                              and r.request.resource_type == "fetch") as answer:
        operation.locator("button.execute").click()
    assert answer.value.url == f"{live.base_url}/api/v1/openapi.json"
    assert answer.value.status == 200
    # Swagger UI shows the answer's status, not "Failed to fetch".
    status = operation.locator(".live-responses-table .response .response-col_status")
    assert status.first.inner_text().strip() == "200"
    page.close()


def test_tags_a_plugin_declares_come_before_the_others():
    from vexpenses_core.openapi import CORE_TAGS, tag_order

    spec = {"tags": [*CORE_TAGS, {"name": "zeta", "description": "declared"}],
            "paths": {"/a": {"get": {"tags": ["beta"]}, "parameters": []},
                      "/z": {"post": {"tags": ["zeta", "alpha"]}}}}
    assert [tag["name"] for tag in tag_order(spec)] == ["accounts", "meta", "zeta", "alpha",
                                                        "beta"]
    assert tag_order(spec)[2]["description"] == "declared"
