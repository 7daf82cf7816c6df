"""The /imports page's catalogue against the API it talks to (no browser)."""

import json

import pytest
from vexpenses_csv_import.pages import PAGE
from vexpenses_csv_import.testing import auth, finished_status, make_csv, upload

KNOWN = PAGE.catalogue.messages["pt_BR"]["api"]


def messages(answer):
    errors = answer.json["errors"]
    if isinstance(errors, str):
        return [errors]
    return [message for field in errors.values() for message in field]


@pytest.mark.parametrize("body", [{}, {"email": "not an address", "password": "x"},
                                  {"email": "ana@example.com"}])
def test_the_page_has_words_for_a_refused_login(app, body):
    answer = app.post_json("/api/v1/user/authenticate", body, status=422)
    assert all(message in KNOWN for message in messages(answer)), messages(answer)


def test_the_page_has_words_for_a_refused_upload(app):
    answer = app.post("/api/v1/user/upload", headers=auth(app.token), status=422)
    assert all(message in KNOWN for message in messages(answer)), messages(answer)
    answer = upload(app, app.token, b"\x00\x01binary", status=422)
    assert all(message in KNOWN for message in messages(answer)), messages(answer)


@pytest.mark.parametrize("content", [b"", make_csv([]), b"Nome,E-mail,Data\xff\nA,b,c\n"])
def test_the_page_has_words_for_a_refused_file(app, content):
    data = finished_status(app, app.token, upload(app, app.token, content).json["data"]["id"])
    assert data["status"] == 2 and data["error"] in KNOWN, data["error"]


@pytest.mark.parametrize("header, lang", [("en", "en"), ("pt-BR", "pt-BR"), (None, "pt-BR"),
                                          ("de", "pt-BR"), ("@@@;;", "pt-BR")])
def test_imports_page_language_headers(app, header, lang):
    answer = app.get("/imports", headers={"Accept-Language": header} if header else {})
    assert answer.headers["Content-Language"] == lang
    assert answer.headers["Vary"] == "Accept-Language"
    block = json.loads(answer.html.find("script", id="messages").string)
    assert block == PAGE.catalogue.messages[lang.replace("-", "_")]
