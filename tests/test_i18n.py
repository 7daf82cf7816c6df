"""Language negotiation and the pages' catalogues (vexpenses_core.i18n, pages.Page)."""

import json

import pytest
from webob import Request

from vexpenses_core.i18n import Catalogue, negotiate
from vexpenses_core.pages import Page, _json_for_script
from vexpenses_core.settings import ConfigurationError

OURS = ["en", "pt_BR"]


@pytest.mark.parametrize("header, expected", [
    (None, "pt_BR"),
    ("", "pt_BR"),
    ("en", "en"),
    ("EN", "en"),
    ("en-US", "en"),
    ("en-GB,en;q=0.9", "en"),
    ("pt-BR", "pt_BR"),
    ("pt-br", "pt_BR"),
    ("pt", "pt_BR"),
    ("pt-PT", "pt_BR"),
    ("pt-BR,pt;q=0.9,en;q=0.8", "pt_BR"),
    # quality decides, not the order
    ("pt-BR;q=0.4, en;q=0.8", "en"),
    ("de, en;q=0.1", "en"),
    ("fr-FR,fr;q=0.9,en;q=0.5", "en"),
    # ties keep the header's order
    ("en;q=0.5, pt;q=0.5", "en"),
    ("pt;q=0.5, en;q=0.5", "pt_BR"),
    # nothing we have: the default
    ("de", "pt_BR"),
    ("de-DE, fr;q=0.5", "pt_BR"),
    # q=0 refuses, wherever it stands
    ("en;q=0", "pt_BR"),
    ("en, pt;q=0", "en"),
    ("pt;q=0, *", "en"),
    ("*, pt-BR;q=0", "en"),
    ("*", "pt_BR"),
    ("de, *;q=0.1", "pt_BR"),
    # garbage never raises: the default
    ("@@@ not a header ;;;", "pt_BR"),
    ("en;q=abc", "pt_BR"),
    ("en;q=2", "pt_BR"),
    (",,,", "pt_BR"),
    ("x" * 5000, "pt_BR"),
    ("en;q=0.5," * 3000 + "en", "en"),
    ("\u00e9\u00e9, \x00", "pt_BR"),
])
def test_negotiate(header, expected):
    assert negotiate(header, OURS, "pt_BR") == expected
    # a request and its header object give the same answer as the text
    request = Request.blank("/", headers={"Accept-Language": header} if header else {})
    assert negotiate(request, OURS, "pt_BR") == expected
    assert negotiate(request.accept_language, OURS, "pt_BR") == expected


def test_negotiate_prefers_the_exact_region_and_falls_back_to_its_language():
    languages = ["en", "pt_BR", "pt_PT"]
    assert negotiate("pt-PT", languages, "en") == "pt_PT"
    assert negotiate("pt-BR", languages, "en") == "pt_BR"
    assert negotiate("pt-AO", languages, "en") == "pt_BR"  # the first pt_* there is
    assert negotiate("pt-PT;q=0, pt", languages, "en") == "pt_BR"
    assert negotiate("en", languages, "pt_PT") == "en"
    assert negotiate("de", languages, "pt_PT") == "pt_PT"


def test_the_default_comes_from_the_setting_matched_to_the_catalogue():
    catalogue = Page("vexpenses_core", "templates/reset_password.html",
                     values=("static", "api")).catalogue
    assert catalogue.languages == OURS
    assert catalogue.default("pt_BR") == "pt_BR"
    assert catalogue.default("en") == "en"
    assert catalogue.default("pt_PT") == "pt_BR"  # the closest
    assert catalogue.default("de") == "en"  # none: the catalogue's source language


def write(folder, name, language, messages):
    (folder / f"{name}.{language}.json").write_text(json.dumps(messages), encoding="utf-8")


def test_a_catalogue_missing_a_string_stops_start_up(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "catpkg"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write(package / "templates", "page", "en", {"title": "Title", "button": "Go"})
    write(package / "templates", "page", "pt_BR", {"title": "Título"})
    with pytest.raises(ConfigurationError, match="page.pt_BR.json .* differ in: button"):
        Catalogue("catpkg", "templates", "page")
    write(package / "templates", "page", "pt_BR", {"title": "Título", "button": "Ir"})
    (package / "templates" / "page.html").write_text("<h1>{{title}}</h1>{{butn}}")
    with pytest.raises(ConfigurationError, match="uses butn"):
        Page("catpkg", "templates/page.html")


def test_strings_and_values_reach_the_page_escaped(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    package = tmp_path / "escpkg"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    hostile = '<b>"Zé" & {{lang}}</b>'
    write(package / "templates", "page", "en", {"title": hostile})
    (package / "templates" / "page.html").write_text(
        '<html lang="{{lang}}"><h1 title="{{title}}">{{title}}</h1><a href="{{link}}"></a>'
        '<script type="application/json" id="messages">{{messages}}</script>')
    page = Page("escpkg", "templates/page.html", values=("link",))
    request = Request.blank("/", headers={"Accept-Language": "en"})
    request.registry = type("Registry", (), {"settings": {"vexpenses.language": "pt_BR"}})()
    response = page.render(request, link='"><script>')
    escaped = "&lt;b&gt;&quot;Zé&quot; &amp; {{lang}}&lt;/b&gt;"
    assert response.text == (
        f'<html lang="en"><h1 title="{escaped}">{escaped}</h1>'
        '<a href="&quot;&gt;&lt;script&gt;"></a><script type="application/json" '
        'id="messages">{"title":"\\u003cb\\u003e\\"Zé\\" \\u0026 {{lang}}\\u003c/b\\u003e"}'
        '</script>')
    assert response.headers["Content-Language"] == "en"


def test_script_json_cannot_close_its_block():
    text = _json_for_script({"a": "</script><script>alert(1)</script> & <!--"})
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"a": "</script><script>alert(1)</script> & <!--"}


@pytest.mark.parametrize("header", [
    "@@@", "x" * 5000, "en;q=abc", "\u00ff\u00fe", "*;q=0", "pt;q=0, en;q=0",
])
def test_a_garbage_header_still_gets_the_page(testapp, header):
    response = testapp.get("/reset-password", headers={"Accept-Language": header})
    assert response.status_code == 200
    assert response.headers["Content-Language"] == "pt-BR"


@pytest.mark.parametrize("header, language, title", [
    ("en-US,en;q=0.9", "en", "Choose a new password"),
    ("pt-BR,pt;q=0.9", "pt-BR", "Escolha uma nova senha"),
    ("de", "pt-BR", "Escolha uma nova senha"),
    (None, "pt-BR", "Escolha uma nova senha"),
])
def test_reset_page_headers_and_html_in_the_chosen_language(testapp, header, language, title):
    response = testapp.get("/reset-password",
                           headers={"Accept-Language": header} if header else {})
    assert response.headers["Content-Language"] == language
    assert response.headers["Vary"] == "Accept-Language"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert f'<html lang="{language}">' in response.text
    assert f"<title>{title}</title>" in response.text
    block = response.html.find("script", id="messages")
    assert json.loads(block.string)["title"] == title


@pytest.mark.parametrize("body", [
    {"password": "a good password", "password_confirmation": "another one"},
    {"password": "short", "password_confirmation": "short"},
    {"password": "x" * 1025, "password_confirmation": "x" * 1025},
    {"password": "          ", "password_confirmation": "          "},
    {"password_confirmation": "a good password"},
    {"email": "not an address"},
    {"token": "no such token"},
])
def test_the_reset_page_has_words_for_the_apis_usual_errors(testapp, body):
    """Each message the API gives for a mistake made on the page has pt_BR words."""
    known = Page("vexpenses_core", "templates/reset_password.html",
                 values=("static", "api")).catalogue.messages["pt_BR"]["api"]
    body = {"token": "x" * 40, "email": "ana@example.com", "password": "a good password",
            "password_confirmation": "a good password", **body}
    errors = testapp.post_json("/api/v1/user/recover-password", body, status=422).json["errors"]
    messages = [message for field in errors.values() for message in field]
    assert messages and all(message in known for message in messages), messages
