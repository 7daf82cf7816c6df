"""mailer: mail_deliveries.claimed_at

When the current attempt at a message began. The delivery row is now
committed, as ``sending``, before the message goes to the server; a task run
again later tells a send still under way (a recent claim) from one whose
worker died (an old one) by it.

Revision ID: mailer_0002
Revises: mailer_0001
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime

revision = "mailer_0002"
down_revision = "mailer_0001"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("mail_deliveries") as batch:
        batch.add_column(sa.Column("claimed_at", UTCDateTime, nullable=True))


def downgrade():
    with op.batch_alter_table("mail_deliveries") as batch:
        batch.drop_column("claimed_at")
