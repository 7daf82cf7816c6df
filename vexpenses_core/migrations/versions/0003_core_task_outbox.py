"""core: the task outbox

Revision ID: core_0003
Revises: core_0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.models import BigId

revision = "core_0003"
down_revision = "core_0002"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "task_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_outbox")),
        mysql_charset="utf8mb4",
    )
    op.create_index(op.f("ix_task_outbox_created_at"), "task_outbox", ["created_at"])


def downgrade():
    op.drop_index(op.f("ix_task_outbox_created_at"), table_name="task_outbox")
    op.drop_table("task_outbox")
