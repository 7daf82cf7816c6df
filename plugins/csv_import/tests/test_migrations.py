"""csv_import's migrations, run by hand on an empty database of each backend."""

import uuid

import pytest
import sqlalchemy as sa
from alembic import command

from vexpenses_core import make_app
from vexpenses_core.db import make_engine
from vexpenses_core.migrate import alembic_config, upgrade
from vexpenses_core.testing import MYSQL_URL, base_settings


@pytest.fixture
def fresh_url(database_url, tmp_path):
    """An empty database on the current backend."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite'}"
        return
    name = f"vexpenses_mig_{uuid.uuid4().hex[:10]}"
    server = make_engine(MYSQL_URL)
    with server.connect() as conn:
        conn.exec_driver_sql(
            f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    yield f"{MYSQL_URL}/{name}?charset=utf8mb4"
    with server.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    server.dispose()


def test_csv_import_0003_counts_the_chunks_of_older_imports_as_queued(fresh_url,
                                                                       environ_clean):
    app = make_app(base_settings(fresh_url, "csv_import"))
    upgrade(app.registry)
    engine = app.registry.dbengine
    config = alembic_config(app.registry)

    def columns():
        return {c["name"] for c in sa.inspect(engine).get_columns("imports")}

    assert "chunks_queued" in columns()
    command.downgrade(config, "csv_import@csv_import_0002")
    assert "chunks_queued" not in columns() and "chunks_done" in columns()
    with engine.begin() as conn:  # an import planned before: all 7 chunks were queued
        conn.exec_driver_sql(
            "INSERT INTO imports (name, original_name, path, size, sha256, send_invitations, "
            "status, delimiter, planned, chunks_total, chunks_done, total, processed, "
            "imported, rejected, duplicates, error_rows, created_at, updated_at) VALUES "
            "('a.csv', 'a.csv', 'a.csv', 0, '', 0, 3, ',', 70, 7, 2, 0, 0, 0, 0, 0, 0, "
            "'2026-12-01 00:00:00', '2026-12-01 00:00:00')")
    upgrade(app.registry)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT chunks_queued FROM imports").scalar() == 7
    engine.dispose()
