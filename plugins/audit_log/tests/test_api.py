"""GET /api/v1/log and /api/v1/log/{id}: the contract of docs/audit_log.md, filters, bad
input, and who sees what."""

import datetime

import pytest
import sqlalchemy as sa
from vexpenses_audit_log.testing import bearer, settle, stored_rows, write_records

from vexpenses_core.testing import make_user

LIST_KEYS = {"id", "action", "description", "user_id", "created_at", "updated_at", "user"}
USER_KEYS = {"id", "name", "email", "birth_date", "created_at", "updated_at"}
PAGINATOR_KEYS = {"current_page", "data", "first_page_url", "from", "last_page",
                  "last_page_url", "links", "next_page_url", "path", "per_page",
                  "prev_page_url", "to", "total"}


@pytest.fixture
def people(app):
    """An admin, Ana and Bia, each with rows of their own, and two job rows.

    Rows: Ana's "Get user" x3 (ids 1-3), Bia's "Get user" (4), Ana's "Get users" (5),
    then two job rows (6, 7).
    """
    registry = app.app.registry
    admin = make_user(registry, email="root@example.com", is_admin=True, name="Root Admin")
    ana = make_user(registry, email="ana@example.com", name="Ana Souza")
    bia = make_user(registry, email="bia@example.com", name="Bia Lima")
    for _ in range(3):
        app.get("/api/v1/user/me", headers={**bearer(ana[1]), "X-Request-ID": "req-ana"})
    app.get("/api/v1/user/me", headers=bearer(bia[1]))
    app.get("/api/v1/user", headers=bearer(ana[1]))
    settle(app)
    write_records(registry, 2)
    return {"admin": admin, "ana": ana, "bia": bia}


def get_list(app, who, query="", status=200):
    return app.get(f"/api/v1/log{query}", headers=bearer(who[1]), status=status).json


def ids(body):
    return [item["id"] for item in body["data"]["data"]]


def test_list_contract(app, people):
    body = get_list(app, people["admin"])
    assert body["status"] is True and body["message"] == "Logs recuperados com sucesso"
    page = body["data"]
    assert set(page) == PAGINATOR_KEYS
    assert page["per_page"] == 10 and page["total"] == 7 and page["current_page"] == 1
    assert ids(body) == [7, 6, 5, 4, 3, 2, 1]  # newest first
    for item in page["data"]:
        assert set(item) == LIST_KEYS
        assert item["created_at"].endswith("Z") and item["updated_at"] == item["created_at"]
    ana_row = page["data"][-1]
    assert ana_row["action"] == "Get user" and ana_row["user_id"] == people["ana"][0]
    assert set(ana_row["user"]) == USER_KEYS and ana_row["user"]["email"] == "ana@example.com"
    job_row = page["data"][0]
    assert job_row["user_id"] is None and job_row["user"] is None
    assert job_row["action"] == "Greeting sent"


def test_detail_contract(app, people):
    body = app.get("/api/v1/log/1", headers=bearer(people["ana"][1])).json
    assert body["message"] == "Log recuperado com sucesso"
    row = body["data"]
    assert LIST_KEYS <= set(row)
    assert row["user"]["id"] == people["ana"][0] and set(row["user"]) == USER_KEYS
    assert row["hook"] == "vexpenses_profile_viewed"
    assert row["request_id"] == "req-ana" and row["ip_address"] == "127.0.0.1"
    assert row["payload"] == {"user": {"id": people["ana"][0], "email": "ana@example.com"}}


def test_pagination_keeps_filters_and_goes_past_the_end(app):
    write_records(app.app.registry, 12)
    admin = make_user(app.app.registry, email="root@example.com", is_admin=True)
    first = get_list(app, admin, "?action=greeting")["data"]
    assert first["total"] == 12 and first["last_page"] == 2 and len(first["data"]) == 10
    assert first["next_page_url"] == "http://localhost/api/v1/log?action=greeting&page=2"
    second = get_list(app, admin, "?action=greeting&page=2")["data"]
    assert len(second["data"]) == 2 and (second["from"], second["to"]) == (11, 12)
    beyond = get_list(app, admin, "?page=9")["data"]
    assert beyond["data"] == [] and beyond["total"] == 12


def test_filters(app, people):
    admin = people["admin"]
    ana_id = people["ana"][0]
    assert ids(get_list(app, admin, "?action=users")) == [5]
    assert ids(get_list(app, admin, "?action=GET%20USER")) == [5, 4, 3, 2, 1]  # any case
    assert ids(get_list(app, admin, f"?user_id={ana_id}")) == [5, 3, 2, 1]
    assert ids(get_list(app, admin, "?request_id=req-ana")) == [3, 2, 1]
    assert ids(get_list(app, admin, "?action=%25")) == []  # LIKE wildcards are literal
    assert ids(get_list(app, admin, "?action=_")) == []
    today = datetime.date.today().isoformat()
    assert get_list(app, admin, f"?from={today}&to={today}")["data"]["total"] == 7
    assert get_list(app, admin, "?to=2000-01-01")["data"]["total"] == 0
    assert get_list(app, admin, "?from=2999-01-01T00:00:00Z")["data"]["total"] == 0
    assert get_list(app, admin, "?from=2000-01-01T00:00:00%2B03:00")["data"]["total"] == 7
    assert get_list(app, admin, "?to=9999-12-31")["data"]["total"] == 7
    assert get_list(app, admin, "?from=0001-01-01")["data"]["total"] == 7
    assert get_list(app, admin, "?action=&user_id=%20")["data"]["total"] == 7  # blank: unused


def test_the_time_filters_cut_at_the_row(app):
    registry = app.app.registry
    admin = make_user(registry, email="root@example.com", is_admin=True)
    write_records(registry, 1, age=datetime.timedelta(days=3))
    write_records(registry, 1)
    old, new = stored_rows(app)
    cut = old["created_at"].isoformat()
    assert ids(get_list(app, admin, f"?to={cut.replace('+', '%2B')}")) == [old["id"]]
    cut = new["created_at"].isoformat()
    assert ids(get_list(app, admin, f"?from={cut.replace('+', '%2B')}")) == [new["id"]]
    two_days_ago = (datetime.date.today() - datetime.timedelta(days=2)).isoformat()
    assert ids(get_list(app, admin, f"?from={two_days_ago}")) == [new["id"]]


BAD_FILTERS = [
    ("?user_id=abc", "user_id"),
    ("?user_id=-1", "user_id"),
    ("?user_id=1.5", "user_id"),
    ("?user_id=99999999999999999999999", "user_id"),
    ("?from=yesterday", "from"),
    ("?from=2024-13-01", "from"),
    ("?to=2024-02-30", "to"),
    ("?to=31/01/2024", "to"),
    ("?from=2024-02-02&to=2024-02-01", "to"),
    ("?action=" + "a" * 256, "action"),
    ("?request_id=" + "r" * 129, "request_id"),
    ("?action=%ff", "query"),
]
NASTY_QUERIES = [
    "?page=-1", "?page=abc", "?page=0", "?page=99999999999999999999",
    "?action=%00%F0%9F%98%80", "?action=%ED%A0%80", "?action='%20OR%201=1--",
    "?request_id=%0d%0aX-Injected:%201", "?from=%00", "?unknown=1", "?action[]=x",
]
BAD_IDS = ["abc", "0", "-1", "999999", "1.0", "1e3", "99999999999999999999999", "%00", "1%20",
           "%F0%9F%98%80"]


@pytest.fixture
def admin(app):
    return make_user(app.app.registry, email="root@example.com", is_admin=True)


def test_bad_filters_are_422(app, admin):
    for query, field in BAD_FILTERS:
        body = get_list(app, admin, query, status=422)
        assert body["status"] is False and body["message"] == "The given data was invalid."
        assert list(body["errors"]) == [field], query


def test_nasty_queries_never_500(app, admin):
    for query in NASTY_QUERIES:
        res = app.get(f"/api/v1/log{query}", headers=bearer(admin[1]), status="*")
        assert res.status_int in (200, 422), query
        assert res.json["status"] is (res.status_int == 200)


def test_unknown_ids_are_404(app, admin):
    write_records(app.app.registry, 1)
    for log_id in BAD_IDS:
        res = app.get(f"/api/v1/log/{log_id}", headers=bearer(admin[1]), status=404)
        assert res.json == {"status": False, "message": "Not found.", "errors": "Not found."}


def test_both_routes_need_a_token(app, people):
    for path in ("/api/v1/log", "/api/v1/log/1", "/api/v1/log/"):
        assert app.get(path, status=401).json["status"] is False
    app.get("/api/v1/log", headers={"Authorization": "Bearer not-a-token"}, status=401)


def test_no_route_changes_a_row(app, people):
    headers = bearer(people["admin"][1])
    before = stored_rows(app)
    for method in ("post", "put", "patch", "delete"):
        for path in ("/api/v1/log", "/api/v1/log/1"):
            res = getattr(app, method)(path, headers=headers, status=405)
            assert res.headers["Allow"] == "GET"
    after = [row for row in stored_rows(app) if row["id"] <= before[-1]["id"]]
    assert after == before


# -- who sees what ------------------------------------------------------------------


def test_admins_see_every_row_including_jobs(app, people):
    assert get_list(app, people["admin"])["data"]["total"] == 7
    for log_id in (1, 4, 6):
        app.get(f"/api/v1/log/{log_id}", headers=bearer(people["admin"][1]))


def test_users_see_only_their_own_rows(app, people):
    ana, bia = people["ana"], people["bia"]
    assert ids(get_list(app, ana)) == [5, 3, 2, 1]
    assert ids(get_list(app, bia)) == [4]
    # another user's id as a filter finds nothing, rather than their rows
    assert get_list(app, bia, f"?user_id={ana[0]}")["data"]["total"] == 0
    app.get("/api/v1/log/4", headers=bearer(bia[1]))
    app.get("/api/v1/log/4", headers=bearer(ana[1]), status=404)  # Bia's
    app.get("/api/v1/log/6", headers=bearer(ana[1]), status=404)  # a job's: admins only
    app.get("/api/v1/log/1", headers=bearer(bia[1]), status=404)


def test_visibility_all_lets_every_user_read_every_row(make_app):
    app = make_app(**{"vexpenses.audit_log.visibility": "all"})
    registry = app.app.registry
    _, ana_token = make_user(registry, email="ana@example.com")
    _, bia_token = make_user(registry, email="bia@example.com")
    app.get("/api/v1/user/me", headers=bearer(ana_token))
    settle(app)
    write_records(registry, 1)
    assert get_list(app, (None, bia_token))["data"]["total"] == 2
    app.get("/api/v1/log/1", headers=bearer(bia_token))
    app.get("/api/v1/log/2", headers=bearer(bia_token))  # a job's row too


def test_a_deleted_users_rows_stay_with_no_user_object(app, people):
    with app.app.registry.dbengine.begin() as conn:
        conn.execute(sa.text("DELETE FROM users WHERE id = :id"), {"id": people["bia"][0]})
    row = app.get("/api/v1/log/4", headers=bearer(people["admin"][1])).json["data"]
    assert row["user_id"] == people["bia"][0] and row["user"] is None
    from vexpenses_audit_log import chain

    assert chain.verify(app.app.registry.dbengine).ok  # nothing was rewritten


def test_openapi_documents_both_paths(app):
    paths = app.get("/api/v1/openapi.json").json["paths"]
    assert set(paths["/api/v1/log"]) == {"get"} and set(paths["/api/v1/log/{id}"]) == {"get"}
    params = {p["name"] for p in paths["/api/v1/log"]["get"]["parameters"]}
    assert params == {"page", "action", "user_id", "from", "to", "request_id"}
