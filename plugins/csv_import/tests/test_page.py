"""The /imports page, driven end to end in headless Chromium (Debian's, via Playwright)."""

import csv
import io
import urllib.request

import pytest
from vexpenses_csv_import.testing import make_csv, people

from vexpenses_core.testing import live_server, make_user

PASSWORD = "a good password"


@pytest.fixture
def page_language():
    """vexpenses.language of the live app; a test parametrizes it to change it."""
    return "pt_BR"


@pytest.fixture
def max_error_rows():
    return "1000"


@pytest.fixture
def live(make_testapp, tmp_path, page_language, max_error_rows):
    def make(base_url):
        return make_testapp(**{"vexpenses.base_url": base_url,
                               "vexpenses.language": page_language,
                               "vexpenses.upload_dir": str(tmp_path / "uploads"),
                               "vexpenses.csv_import.chunk_bytes": "300",
                               "vexpenses.csv_import.batch_rows": "2",
                               "vexpenses.csv_import.batch_delay": "0.1",
                               "vexpenses.csv_import.uploads_per_hour": "0",
                               "vexpenses.csv_import.max_error_rows": max_error_rows})

    with live_server(make) as testapp:
        make_user(testapp.app.registry, email="ana@example.com", password=PASSWORD)
        yield testapp


def wait_until_finished(page):
    page.wait_for_function(
        "() => ['1', '2'].includes(document.querySelector('#state').dataset.status)",
        timeout=30000)


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
    wait_until_finished(page)
    assert page.inner_text("#state") == "finished with errors"
    assert page.get_attribute("#bar", "value") == "100"
    assert page.inner_text("#count-imported") == "60"
    assert page.inner_text("#count-rejected") == "1"
    assert page.inner_text("#count-duplicates") == "1"
    assert page.inner_text("#result") == (
        "1 row was rejected and 1 row was a duplicate; 60 users were imported. "
        "The error report lists each of them.")

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


# -- languages and wording ---------------------------------------------------------


def open_imports(browser, live, locale):
    """The page in a fresh context whose locale sets Chromium's Accept-Language."""
    context = browser.new_context(locale=locale)
    page = context.new_page()
    response = page.goto(live.base_url + "/imports")
    return page, response


def log_in(page, password=PASSWORD):
    page.fill("#email", "ana@example.com")
    page.fill("#password", password)
    page.click("#login-form button[type=submit]")
    if password == PASSWORD:
        page.wait_for_selector("#upload-form", state="visible")
    else:
        page.wait_for_function("() => document.querySelector('#result').textContent")
    return page.inner_text("#result")


def import_rows(page, rows, name="pessoas.csv"):
    """Upload ``rows`` through the page; the result line once it has finished."""
    page.evaluate("document.querySelector('#state').removeAttribute('data-status')")
    page.set_input_files("#file", files=[{"name": name, "mimeType": "text/csv",
                                          "buffer": make_csv(rows)}])
    page.click("#upload-form button[type=submit]")
    wait_until_finished(page)
    return page.inner_text("#result")


BAD = ("Bad Row", "not-an-email", "1990-01-01")
ANA = ("Ana Again", "ana@example.com", "1990-01-01")  # already registered: a duplicate

# rows, English, Portuguese
OUTCOMES = [
    ([BAD] + people(1, start=10),
     "1 row was rejected; 1 user was imported. The error report lists that row.",
     "1 linha foi rejeitada; 1 usuário foi importado. O relatório de erros mostra essa "
     "linha."),
    ([ANA, ANA] + people(3, start=20),
     "2 rows were duplicates; 3 users were imported. The error report lists each of them.",
     "2 linhas eram duplicadas; 3 usuários foram importados. O relatório de erros mostra "
     "todas elas."),
    ([BAD, BAD, ANA],
     "2 rows were rejected and 1 row was a duplicate; no users were imported. "
     "The error report lists each of them.",
     "2 linhas foram rejeitadas e 1 linha era duplicada; nenhum usuário foi importado. "
     "O relatório de erros mostra todas elas."),
    (people(2, start=30),
     "Every row was imported.",
     "Todas as linhas foram importadas."),
]


@pytest.mark.parametrize("locale, lang, title, state", [
    ("en-US", "en", "Import users from CSV", "finished with errors"),
    ("pt-BR", "pt-BR", "Importar usuários de um CSV", "concluída com erros"),
])
def test_the_page_speaks_the_browsers_language_and_counts_correctly(
        live, browser, locale, lang, title, state):
    page, response = open_imports(browser, live, locale)
    assert response.headers["content-language"] == lang
    assert response.headers["vary"] == "Accept-Language"
    assert page.get_attribute("html", "lang") == lang
    assert page.title() == title and page.inner_text("h1") == title
    english = lang == "en"
    assert page.inner_text("#login-form button") == ("Log in" if english else "Entrar")
    # a wrong password: the API's words in English, the page's own in Portuguese
    assert log_in(page, "wrong password") == (
        "The provided credentials are incorrect." if english else "E-mail ou senha incorretos.")
    log_in(page)
    assert page.inner_text("#upload-form button") == ("Upload" if english else "Enviar")
    for rows, en, pt in OUTCOMES:
        assert import_rows(page, rows) == (en if english else pt)
    assert page.inner_text("#state") == ("finished" if english else "concluída")
    # the whole file refused: the API's message, translated when the page knows it
    assert import_rows(page, []) == (
        "The file has a header but no data rows." if english
        else "O arquivo tem o cabeçalho, mas nenhuma linha de dados.")
    assert page.inner_text("#state") == state
    page.context.close()


@pytest.mark.parametrize("max_error_rows", ["1"])
def test_a_capped_report_says_so(live, browser):
    for locale, text in [
        ("en-GB", "3 rows were rejected; no users were imported. "
                  "The error report lists only the first of them."),
        ("pt-PT", "3 linhas foram rejeitadas; nenhum usuário foi importado. "
                  "O relatório de erros mostra só a primeira delas."),
    ]:
        page, _ = open_imports(browser, live, locale)
        log_in(page)
        assert import_rows(page, [BAD, BAD, BAD]) == text
        page.context.close()


@pytest.mark.parametrize("page_language, lang, heading", [
    ("pt_BR", "pt-BR", "Importar usuários de um CSV"),
    ("en", "en", "Import users from CSV"),
])
def test_a_language_the_page_lacks_gives_the_setting(live, browser, lang, heading):
    page, response = open_imports(browser, live, "de-DE")
    assert response.headers["content-language"] == lang
    assert page.inner_text("h1") == heading
    page.context.close()
    # no Accept-Language at all (Chromium always sends one: urllib asks)
    with urllib.request.urlopen(live.base_url + "/imports") as answer:
        assert answer.headers["Content-Language"] == lang
        assert f'<html lang="{lang}">' in answer.read().decode()
