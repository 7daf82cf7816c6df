"""The /imports page, driven end to end in headless Chromium (Debian's, via Playwright)."""

import csv
import io

import pytest
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core.testing import live_server, make_user

PASSWORD = "a good password"


@pytest.fixture
def live(make_testapp, tmp_path):
    def make(base_url):
        return make_testapp(**{"vexpenses.base_url": base_url,
                               "vexpenses.upload_dir": str(tmp_path / "uploads"),
                               "vexpenses.csv_import.chunk_bytes": "300",
                               "vexpenses.csv_import.batch_rows": "2",
                               "vexpenses.csv_import.batch_delay": "0.1"})

    with live_server(make) as testapp:
        make_user(testapp.app.registry, email="ana@example.com", password=PASSWORD)
        yield testapp


def test_log_in_upload_watch_progress_and_download_the_report(live, browser, tmp_path):
    page = browser.new_page(accept_downloads=True)
    response = page.goto(live.base_url + "/imports")
    assert response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]

    page.fill("#email", "ana@example.com")
    page.fill("#password", "wrong password")
    page.click("#login-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#result').textContent.length > 0")
    assert page.get_attribute("#result", "class") == "error"
    assert page.is_visible("#login-form")

    page.fill("#password", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#upload-form", state="visible")
    assert page.inner_text("#who") == "ana@example.com"
    # the token is kept for this tab only
    assert page.evaluate("sessionStorage.getItem('vexpenses.token')")
    assert page.evaluate("localStorage.length") == 0

    rows = people(60) + [("=HYPERLINK(\"x\")", "not-an-email", "1990-01-01"),
                         ("Dup", "pessoa3@example.com", "1990-01-01")]
    path = tmp_path / "pessoas.csv"
    path.write_bytes(make_csv(rows))
    page.set_input_files("#file", str(path))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#progress-box", state="visible")
    # live: the bar is seen part-way before it is full
    page.wait_for_function("() => { const v = document.querySelector('#bar').value;"
                           " return v > 0 && v < 100; }", timeout=20000)
    page.wait_for_function(
        "() => document.querySelector('#state').textContent.startsWith('finished')",
        timeout=30000)
    assert page.inner_text("#state") == "finished with errors"
    assert page.get_attribute("#bar", "value") == "100"
    assert page.inner_text("#count-imported") == "60"
    assert page.inner_text("#count-rejected") == "1"
    assert page.inner_text("#count-duplicates") == "1"
    assert "1 rows were rejected and 1 were duplicates" in page.inner_text("#result")

    with page.expect_download() as info:
        page.click("#report")
    saved = tmp_path / "report.csv"
    info.value.save_as(saved)
    lines = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert lines[0][0] == "Row" and len(lines) == 3
    assert lines[1][1] == "'=HYPERLINK(\"x\")"
    page.screenshot(path=str(tmp_path / "imports-done.png"))
    page.close()


def test_page_without_login_offers_only_the_login_form(live, browser):
    page = browser.new_page()
    page.goto(live.base_url + "/imports")
    assert page.is_visible("#login-form")
    assert page.is_hidden("#import-section")
    # a stale token is dropped on the first 401
    page.evaluate("sessionStorage.setItem('vexpenses.token', 'stale')")
    page.reload()
    page.set_input_files("#file", files=[{"name": "a.csv", "mimeType": "text/csv",
                                          "buffer": make_csv(people(1))}])
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#login-form", state="visible")
    assert "expired" in page.inner_text("#result")
    page.close()
