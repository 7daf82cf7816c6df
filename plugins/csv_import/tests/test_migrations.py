"""csv_import's migrations, run by hand on an empty database of each backend."""


import sqlalchemy as sa
from alembic import command

from vexpenses_core import make_app
from vexpenses_core.migrate import alembic_config, upgrade
from vexpenses_core.testing import base_settings


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
