"""core: verified and disabled accounts, and links for verification and e-mail change

``users`` gains ``email_verified_at`` and ``disabled_at``, both null for
existing accounts: nobody is disabled, and no address was proved yet.
``password_resets`` now holds every e-mailed link's token: ``purpose`` says
which kind (existing rows are resets) and ``new_email`` the address an
e-mail change moves to.

Revision ID: core_0005
Revises: core_0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from vexpenses_core.db import UTCDateTime
from vexpenses_core.models import EmailAddress

revision = "core_0005"
down_revision = "core_0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("email_verified_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("disabled_at", UTCDateTime, nullable=True))
    with op.batch_alter_table("password_resets") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False,
                                   server_default="reset"))
        batch.add_column(sa.Column("new_email", EmailAddress, nullable=True))


def downgrade():
    with op.batch_alter_table("password_resets") as batch:
        batch.drop_column("new_email")
        batch.drop_column("purpose")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("disabled_at")
        batch.drop_column("email_verified_at")
