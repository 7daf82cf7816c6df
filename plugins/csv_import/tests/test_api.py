"""The upload and status API, as docs/csv_import.md's "API" section says, on SQLite and MariaDB."""

import pathlib

from sqlalchemy import func, select
from vexpenses_csv_import.testing import (
    finished_status,
    import_status,
    make_csv,
    people,
    upload,
)

from vexpenses_core.models import User

# shared/ sits beside the repository's clone
FIXTURE = pathlib.Path(__file__).resolve().parents[4] / "shared/fixtures/usuarios_teste.csv"
if not FIXTURE.exists():
    FIXTURE = pathlib.Path("/work/shared/fixtures/usuarios_teste.csv")
MESSAGE = "Success on store file. We will process in background."


def user_count(app):
    session = app.app.registry.dbsession_factory()
    try:
        return session.scalar(select(func.count()).select_from(User))
    finally:
        session.close()


def test_sample_fixture_imports_with_status_1(app, tmp_path):
    content = FIXTURE.read_bytes()
    res = upload(app, app.token, content, filename="usuarios_teste.csv")
    assert res.json["status"] is True
    assert res.json["message"] == MESSAGE
    data = res.json["data"]
    assert {"id", "name", "original_name", "path", "status", "created_at",
            "updated_at"} <= set(data)
    assert data["original_name"] == "usuarios_teste.csv"
    assert data["status"] == 0 and isinstance(data["id"], int)
    assert data["path"].endswith(data["name"])
    stored = tmp_path / "uploads" / data["path"]
    assert stored.read_bytes() == content

    final = finished_status(app, app.token, data["id"])
    rows = len(content.decode().strip().splitlines()) - 1
    assert final["status"] == 1, final
    assert final["progress"] == 100 and final["error"] is None
    assert (final["total"], final["processed"], final["imported"]) == (rows, rows, rows)
    assert final["rejected"] == final["duplicates"] == 0
    assert user_count(app) == 3 + rows
    res = import_status(app, app.token, data["id"])
    assert res.json["message"] == MESSAGE
    assert {"id", "name", "original_name", "path", "status", "error", "created_at",
            "updated_at", "deleted_at", "progress"} <= set(res.json["data"])


def test_imported_users_have_no_password(app):
    res = upload(app, app.token, make_csv(people(4)))
    finished_status(app, app.token, res.json["data"]["id"])
    session = app.app.registry.dbsession_factory()
    users = session.scalars(select(User).where(User.email.like("pessoa%"))).all()
    session.close()
    assert len(users) == 4
    assert all(user.password_hash is None for user in users)
    app.post_json("/api/v1/user/authenticate",
                  {"email": "pessoa1@example.com", "password": "anything at all"}, status=401)
