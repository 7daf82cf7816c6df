"""csv_import: imports, import_chunks, import_errors

Revision ID: csv_import_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.models import BigId

revision = "csv_import_0001"
down_revision = None
branch_labels = ("csv_import",)
depends_on = "core_0002"


def upgrade():
    op.create_table(
        "imports",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("original_name", sa.String(255), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("send_invitations", sa.Boolean, nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("error_summary", sa.Text, nullable=True),
        sa.Column("delimiter", sa.String(1), nullable=False),
        sa.Column("planned", sa.BigInteger, nullable=False),
        sa.Column("chunks_total", sa.Integer, nullable=False),
        sa.Column("chunks_done", sa.Integer, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("imported", sa.BigInteger, nullable=False),
        sa.Column("rejected", sa.BigInteger, nullable=False),
        sa.Column("duplicates", sa.BigInteger, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("deleted_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL",
                                name=op.f("fk_imports_user_id_users")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_imports_user_id"), "imports", ["user_id"])
    op.create_table(
        "import_chunks",
        sa.Column("import_id", BigId, nullable=False),
        sa.Column("chunk_index", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("start", sa.BigInteger, nullable=False),
        sa.Column("end", sa.BigInteger, nullable=False),
        sa.Column("first_row", sa.BigInteger, nullable=False),
        sa.Column("next_row", sa.BigInteger, nullable=False),
        sa.Column("done", sa.Boolean, nullable=False),
        sa.Column("total", sa.BigInteger, nullable=False),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("imported", sa.BigInteger, nullable=False),
        sa.Column("rejected", sa.BigInteger, nullable=False),
        sa.Column("duplicates", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("import_id", "chunk_index", name=op.f("pk_import_chunks")),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"], ondelete="CASCADE",
                                name=op.f("fk_import_chunks_import_id_imports")),
        mysql_charset="utf8mb4",
    )
    op.create_table(
        "import_errors",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("import_id", BigId, nullable=False),
        sa.Column("row_number", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_errors")),
        sa.ForeignKeyConstraint(["import_id"], ["imports.id"], ondelete="CASCADE",
                                name=op.f("fk_import_errors_import_id_imports")),
        sa.UniqueConstraint("import_id", "row_number", name=op.f("uq_import_errors_import_id")),
        mysql_charset="utf8mb4",
    )


def downgrade():
    op.drop_table("import_errors")
    op.drop_table("import_chunks")
    op.drop_index(op.f("ix_imports_user_id"), table_name="imports")
    op.drop_table("imports")
