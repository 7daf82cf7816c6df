"""audit_log: entries and the chain head

Revision ID: audit_log_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.models import BigId

revision = "audit_log_0001"
down_revision = None
branch_labels = ("audit_log",)
depends_on = "core_0002"


def upgrade():
    op.create_table(
        "audit_log_entries",
        sa.Column("id", BigId, autoincrement=False, nullable=False),
        sa.Column("uid", sa.String(32), nullable=False),
        sa.Column("hook", sa.String(255), nullable=False),
        sa.Column("action", sa.String(255), nullable=False),
        sa.Column("description", sa.String(1000), nullable=False),
        sa.Column("user_id", BigId, nullable=True),
        sa.Column("ip_address", sa.String(45), nullable=True),
        sa.Column("user_agent", sa.String(255), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_entries")),
        sa.UniqueConstraint("uid", name=op.f("uq_audit_log_entries_uid")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_audit_log_entries_user_id"), "audit_log_entries", ["user_id"])
    op.create_index(op.f("ix_audit_log_entries_request_id"), "audit_log_entries",
                    ["request_id"])
    op.create_index(op.f("ix_audit_log_entries_created_at"), "audit_log_entries",
                    ["created_at"])
    op.create_table(
        "audit_log_chain",
        sa.Column("id", sa.Integer, autoincrement=False, nullable=False),
        sa.Column("last_id", BigId, nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
        sa.Column("anchor_id", BigId, nullable=False),
        sa.Column("anchor_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log_chain")),
        mysql_charset="utf8mb4",
    )


def downgrade():
    op.drop_table("audit_log_chain")
    op.drop_table("audit_log_entries")
