"""mailer: mail_deliveries

Revision ID: mailer_0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.models import BigId

revision = "mailer_0001"
down_revision = None
branch_labels = ("mailer",)
depends_on = "core_0002"


def upgrade():
    op.create_table(
        "mail_deliveries",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("dedupe_key", sa.String(100), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_deliveries")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="SET NULL",
            name=op.f("fk_mail_deliveries_user_id_users"),
        ),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_mail_deliveries_dedupe_key")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_mail_deliveries_user_id"), "mail_deliveries", ["user_id"])
    op.create_index(op.f("ix_mail_deliveries_status"), "mail_deliveries", ["status"])


def downgrade():
    op.drop_table("mail_deliveries")
