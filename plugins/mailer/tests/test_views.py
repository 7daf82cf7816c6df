"""GET /api/v1/mailer/deliveries, the includeme, the OpenAPI paths and the table."""

import pytest
import sqlalchemy as sa
from pyramid.config import Configurator
from vexpenses_mailer.testing import register

from vexpenses_core.testing import make_user

URL = "/api/v1/mailer/deliveries"


@pytest.fixture
def admin_app(mail_app):
    app = mail_app()
    _, token = make_user(app.registry, email="admin@example.com", is_admin=True)
    _, user_token = make_user(app.registry, email="user@example.com")
    app.admin = {"Authorization": f"Bearer {token}"}
    app.user = {"Authorization": f"Bearer {user_token}"}
    return app


def test_admins_see_what_was_sent_and_what_failed(admin_app):
    app = admin_app
    register(app, status=201)
    app.sent()
    app.sink.fail_next("550 5.1.1 no such user")
    register(app, email="bia@example.com", name="Bia", status=201)
    app.sent()
    res = app.get(URL, headers=app.admin, status=200)
    assert res.json["message"] == "Mail deliveries"
    page = res.json["data"]
    assert page["total"] == 2 and page["per_page"] == 10
    newest, oldest = page["data"]
    assert (newest["recipient"], newest["status"], newest["last_error"]) == (
        "bia@example.com", "failed", "550 5.1.1 no such user")
    assert (oldest["recipient"], oldest["status"], oldest["kind"]) == (
        "ana@example.com", "sent", "welcome")
    assert set(oldest) == {"id", "kind", "user_id", "recipient", "subject", "status",
                           "attempts", "last_error", "message_id", "created_at", "sent_at"}

    failed = app.get(URL, {"status": "failed", "kind": "welcome"}, headers=app.admin).json
    assert [d["recipient"] for d in failed["data"]["data"]] == ["bia@example.com"]
    assert "status=failed" in failed["data"]["first_page_url"]
    assert app.get(URL, {"kind": "reset"}, headers=app.admin).json["data"]["data"] == []
    assert app.get(URL, {"page": "99"}, headers=app.admin).json["data"]["data"] == []


NASTY = [
    {"status": "FAILED"}, {"status": "' OR 1=1 --"}, {"kind": "welcome\r\nX: y"},
    {"kind": "x" * 5000}, {"status": "\x00"}, {"kind": "<script>alert(1)</script>"},
]


@pytest.mark.parametrize("params", NASTY)
def test_bad_filters_are_a_422(admin_app, params):
    res = admin_app.get(URL, params, headers=admin_app.admin, status=422)
    assert res.json["status"] is False
    assert list(res.json["errors"]) == list(params)


def test_only_admins(admin_app):
    admin_app.get(URL, status=401)
    admin_app.get(URL, headers=admin_app.user, status=403)
    for page in ("abc", "-1", "1e9", ""):  # a bad page is page 1, never a 500
        admin_app.get(URL, {"page": page}, headers=admin_app.admin, status=200)


def test_openapi_lists_the_route(mail_app):
    doc = mail_app().get("/api/v1/openapi.json").json
    assert "/api/v1/mailer/deliveries" in doc["paths"]
    assert "MailDelivery" in doc["components"]["schemas"]


def test_includeme_twice_keeps_the_first_mailer(mail_app):
    app = mail_app()
    registry = app.registry
    mailer = registry.mailer
    config = Configurator(registry=registry)
    config.include("vexpenses_mailer.config")
    config.include("vexpenses_mailer.config")
    assert registry.mailer is mailer


def test_migration_made_the_table(mail_app):
    app = mail_app()
    inspector = sa.inspect(app.registry.dbengine)
    columns = {c["name"] for c in inspector.get_columns("mail_deliveries")}
    assert columns == {"id", "kind", "user_id", "recipient", "subject", "status", "attempts",
                       "last_error", "dedupe_key", "message_id", "created_at", "sent_at",
                       "claimed_at"}
    uniques = inspector.get_unique_constraints("mail_deliveries")
    indexes = inspector.get_indexes("mail_deliveries")
    assert any(u["column_names"] == ["dedupe_key"] for u in uniques) or any(
        i["column_names"] == ["dedupe_key"] and i["unique"] for i in indexes)
    assert "body" not in columns  # bodies hold live links: never stored
