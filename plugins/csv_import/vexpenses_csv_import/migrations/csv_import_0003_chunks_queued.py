"""csv_import: how many of an import's chunks were queued, for the cap on parallel chunks

Revision ID: csv_import_0003
Revises: csv_import_0002
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "csv_import_0003"
down_revision = "csv_import_0002"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("imports") as batch:
        batch.add_column(sa.Column("chunks_queued", sa.Integer, nullable=False,
                                   server_default="0"))
    # Imports planned before this revision had every chunk queued at once.
    op.execute("UPDATE imports SET chunks_queued = chunks_total")


def downgrade():
    with op.batch_alter_table("imports") as batch:
        batch.drop_column("chunks_queued")
