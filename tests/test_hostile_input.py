"""No input gives a 500: a corpus of hostile requests, each a 4xx in the envelope.

Run on SQLite and MariaDB with real Redis (docs/security.md, "Hostile input").
"""

import base64
import json

import pytest

PASSWORD = "correct horse battery"
JSON_ROUTES = [
    "/api/v1/user/register",
    "/api/v1/user/authenticate",
    "/api/v1/user/forgot-password",
    "/api/v1/user/recover-password",
    "/api/v1/user/refresh-token",
]


@pytest.fixture
def app(make_testapp, redis_url):
    return make_testapp(**{"vexpenses.redis_url": redis_url})


def assert_refused(res, status=422):
    expected = status if isinstance(status, tuple) else (status,)
    assert res.status_int in expected, res.text[:300]
    assert res.content_type == "application/json"
    assert res.json["status"] is False
    assert res.json["message"]
    assert "Traceback" not in res.text


def register(app, status=201, **fields):
    body = {"name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-01-01", **fields}
    return app.post_json("/api/v1/user/register", body, status=status)


def token_for(app):
    register(app)
    res = app.post_json("/api/v1/user/authenticate",
                        {"email": "ana@example.com", "password": PASSWORD}, status=201)
    return {"Authorization": f"Bearer {res.json['data']['token']}"}


# -- bodies whose Content-Type lies ---------------------------------------------

JSON = json.dumps({"email": "ana@example.com", "password": PASSWORD}).encode()
MULTIPART = (b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\n'
             b'ana@example.com\r\n--b--\r\n')
MISMATCHED = [
    ("multipart/form-data", JSON),  # JSON labelled multipart, no boundary
    ("multipart/form-data; boundary=b", JSON),  # ... with a boundary it doesn't use
    ("multipart/form-data", MULTIPART),  # multipart without its boundary
    ("multipart/form-data; boundary=other", MULTIPART),  # with the wrong one
    ('multipart/form-data; boundary=""', MULTIPART),
    ("multipart/form-data; boundary=b", b"--b\r\nno headers, no end"),
    ("multipart/form-data; boundary=b; charset=x-unknown", MULTIPART),
    ("application/x-www-form-urlencoded; charset=x-unknown", b"email=a"),
    ("application/x-www-form-urlencoded; charset=latin-1", b"email=\xe9"),
    ("application/x-www-form-urlencoded", b"email=%ff%fe&password=\xff"),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b'{"email": "\\ud800"}'),
]


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("content_type,body", MISMATCHED)
def test_a_body_that_is_not_what_it_claims_is_422(app, path, content_type, body):
    res = app.post(path, body, headers={"Content-Type": content_type}, expect_errors=True)
    assert_refused(res)


def test_a_lying_body_is_named_as_the_problem(app):
    res = app.post("/api/v1/user/authenticate", JSON,
                   headers={"Content-Type": "multipart/form-data"}, status=422)
    assert list(res.json["errors"]) == ["body"]
    assert "multipart/form-data" in res.json["errors"]["body"][0]


def test_a_real_multipart_form_still_works(app):
    register(app)
    body = (b'--b\r\nContent-Disposition: form-data; name="email"\r\n\r\nana@example.com\r\n'
            b'--b\r\nContent-Disposition: form-data; name="password"\r\n\r\n'
            + PASSWORD.encode() + b'\r\n--b--\r\n')
    app.post("/api/v1/user/authenticate", body,
             headers={"Content-Type": "multipart/form-data; boundary=b"}, status=201)


# -- deep and strange JSON --------------------------------------------------------

DEEP = [
    # Deep enough for json.loads' own recursion limit, small enough for any route.
    b"[" * 20_000 + b"]" * 20_000,
    b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    b'{"email": ' + b"[" * 40 + b"]" * 40 + b"}",
    b'{"email": 1e999999, "password": 123456789012345678901234567890}',
    b'{"email": ' + b"9" * 5000 + b"}",
    b'{"email": NaN}',
    b'{"email": "ana@example.com", "email": {"$ne": null}}',
    b"[]",
    b'"just a string"',
]


@pytest.mark.parametrize("path", JSON_ROUTES)
@pytest.mark.parametrize("body", DEEP, ids=lambda body: body[:24].decode())
def test_deep_or_strange_json_is_422(app, path, body):
    res = app.post(path, body, headers={"Content-Type": "application/json"},
                   expect_errors=True)
    # A JSON object without a refresh token is that route's 401.
    assert_refused(res, (401, 422) if path.endswith("refresh-token") else 422)


# -- numbers out of range, in queries and cursors -----------------------------------

def cursor(payload):
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize("query", [
    {"cursor": cursor({"after": 2**63})},
    {"cursor": cursor({"after": 10**40})},
    {"cursor": cursor({"after": -1})},
    {"cursor": cursor({"after": 1.5})},
    {"cursor": cursor({"after": "1"})},
    {"cursor": cursor([1])},
    {"cursor": "%%%"},
    {"cursor": "A" * 10_000},
    {"cursor": base64.urlsafe_b64encode(b"[" * 100_000).decode()},
])
def test_a_cursor_out_of_range_or_forged_is_422(app, query):
    res = app.get("/api/v1/user/", query, headers=token_for(app), expect_errors=True)
    assert_refused(res)
    assert list(res.json["errors"]) == ["cursor"]


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1e9", str(2**63), "9" * 5000, "1.5", ""])
def test_any_page_number_is_an_answer(app, page):
    res = app.get("/api/v1/user/", {"page": page}, headers=token_for(app))
    assert res.json["data"]["current_page"] >= 1


# -- over-long strings, refused before they are stored, hashed or counted -------------

LONG = "a" * 5_000  # within every route's body limit, beyond every field's


@pytest.mark.parametrize("path,field", [
    ("/api/v1/user/register", "name"),
    ("/api/v1/user/register", "email"),
    ("/api/v1/user/register", "password"),
    ("/api/v1/user/authenticate", "email"),
    ("/api/v1/user/authenticate", "password"),
    ("/api/v1/user/forgot-password", "email"),
    ("/api/v1/user/recover-password", "token"),
    ("/api/v1/user/recover-password", "email"),
    ("/api/v1/user/recover-password", "password"),
])
def test_an_over_long_field_is_422_on_that_field(app, path, field):
    body = {"name": "Ana Souza", "email": "ana@example.com", "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-01-01", "token": "t"}
    body[field] = LONG
    if field == "password":
        body["password_confirmation"] = LONG
    res = app.post_json(path, body, expect_errors=True)
    assert_refused(res)
    assert field in res.json["errors"]


@pytest.mark.parametrize("path", JSON_ROUTES)
def test_a_megabyte_in_any_field_is_refused(app, path):
    res = app.post_json(path, {"email": "a" * 1_000_000, "name": "b" * 1_000_000,
                               "refresh_token": "c" * 1_000_000}, expect_errors=True)
    assert_refused(res, (413, 422))


def test_an_over_long_refresh_token_is_401(app):
    res = app.post_json("/api/v1/user/refresh-token", {"refresh_token": LONG},
                        expect_errors=True)
    assert_refused(res, 401)


LONG_EMAILS = [
    "a" * 65 + "@example.com",  # local part over 64 octets
    "a@" + "b" * 250 + ".com",  # address over 254 octets
    "é" * 40 + "@example.com",  # 80 octets of UTF-8 in 40 characters
    "a" * 5_000,
]


@pytest.mark.parametrize("email", LONG_EMAILS)
def test_an_address_longer_than_rfc_5321_touches_no_limiter(app, email):
    redis = app.app.registry.redis
    prefix = app.app.registry.settings["vexpenses.redis_prefix"]
    before = sorted(redis.scan_iter(match=prefix + "*"))
    for _ in range(10):
        for path in ("/api/v1/user/authenticate", "/api/v1/user/forgot-password"):
            res = app.post_json(path, {"email": email, "password": PASSWORD},
                                expect_errors=True)
            assert_refused(res)
            assert list(res.json["errors"]) == ["email"]
    assert sorted(redis.scan_iter(match=prefix + "*")) == before
    # The limiter's own keys live under its prefix too: nothing there either.
    assert not list(redis.scan_iter(match=prefix + "limits*"))


def test_a_list_filter_longer_than_a_column_is_422(app):
    headers = token_for(app)
    for name in ("name", "email"):
        res = app.get("/api/v1/user/", {name: "x" * 256}, headers=headers, expect_errors=True)
        assert_refused(res)


# -- free text that hides or reorders what people read ----------------------------

# Names and e-mails here are also plugins/csv_import/tests/test_row_rules.py's corpus.
UNSAFE_NAMES = [
    "Ana\tSouza",
    "Ana\nSouza",
    "Ana\r\nBcc: x@example.com",
    "Ana\x7fSouza",
    "Ana\x85Souza",  # NEL, a C1 control
    "Ana\u2028Souza",  # line separator
    "Ana \u202egnp.exe",  # right-to-left override
    "Ana \u2066Souza\u2069",  # isolates
    "Ana\u200bSouza",  # zero-width space
    "\ufeffAna Souza",  # byte order mark
    "Ana\u00adSouza",  # soft hyphen
    "Ana\x00Souza",
]


@pytest.mark.parametrize("name", UNSAFE_NAMES)
def test_names_with_controls_or_bidi_overrides_are_422(app, name):
    res = register(app, status=422, name=name)
    assert list(res.json["errors"]) == ["name"]


REAL_NAMES = [
    "Zoë Saldaña",
    "محمد\u200cرضا",  # ZWNJ: Persian needs it
    "José  da   Silva",  # runs of spaces are folded, not refused
    "李小龍",
]


@pytest.mark.parametrize("name", REAL_NAMES)
def test_real_names_are_still_welcome(app, name):
    data = register(app, name=name).json["data"]
    assert data["name"] == " ".join(name.split())
