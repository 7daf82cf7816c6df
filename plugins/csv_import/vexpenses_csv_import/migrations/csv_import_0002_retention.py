"""csv_import: when an import's file was removed, and how many error rows it stored

Revision ID: csv_import_0002
Revises: csv_import_0001
Create Date: 2026-12-14
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime

revision = "csv_import_0002"
down_revision = "csv_import_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("file_removed_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("error_rows", sa.BigInteger, nullable=False,
                                   server_default="0"))
    # The cleanup looks for finished imports whose file is still there.
    op.create_index("ix_imports_file_removed_at", "imports", ["file_removed_at", "finished_at"])
    # Imports from before this revision keep the error rows they stored.
    op.execute("UPDATE imports SET error_rows = (SELECT COUNT(*) FROM import_errors "
               "WHERE import_errors.import_id = imports.id)")


def downgrade():
    op.drop_index("ix_imports_file_removed_at", table_name="imports")
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("error_rows")
        batch.drop_column("file_removed_at")
