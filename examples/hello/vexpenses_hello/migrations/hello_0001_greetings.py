"""hello: greetings

Revision ID: hello_0001
Revises:
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core import UTCDateTime

revision = "hello_0001"
down_revision = None
branch_labels = ("hello",)
depends_on = "core_0001"


def upgrade():
    op.create_table(
        "hello_greetings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("message", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("greeted_at", UTCDateTime, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hello_greetings")),
        mysql_charset="utf8mb4",
    )


def downgrade():
    op.drop_table("hello_greetings")
