"""core: e-mail addresses in one canonical form, compared byte for byte

Rewrites every address into the canonical form of
``vexpenses_core.accounts.validation.normalize_email`` and gives the column
a binary collation on MariaDB/MySQL. Refuses to run, naming the accounts,
when two existing accounts would end up with one address: merging them is a
decision for a person, not for a migration.

Revision ID: core_0004
Revises: core_0003
Create Date: 2026-12-04
"""

import logging
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

from vexpenses_core.accounts.validation import normalize_email
from vexpenses_core.migrate import MigrationRefused

revision = "core_0004"
down_revision = "core_0003"
branch_labels = None
depends_on = None

log = logging.getLogger("vexpenses_core.migrate")

users = sa.table("users", sa.column("id", sa.BigInteger), sa.column("email", sa.String))


def canonical_changes(rows):
    """``{id: new address}`` for ``rows`` of (id, email); refuses merges.

    Addresses the new rule does not accept are left as they are, and logged:
    their owners can still reset their password by an administrator's hand.
    """
    by_address = defaultdict(list)
    changes = {}
    kept = []
    for user_id, email in rows:
        canonical = normalize_email(email)
        if canonical is None:
            kept.append((user_id, email))
            canonical = email
        by_address[canonical].append((user_id, email))
        if canonical != email:
            changes[user_id] = canonical
    merged = {address: found for address, found in by_address.items() if len(found) > 1}
    if merged:
        lines = [
            f"  {address!r}: " + ", ".join(f"user {uid} ({email!r})" for uid, email in found)
            for address, found in sorted(merged.items())
        ]
        raise MigrationRefused(
            "core_0004 would merge accounts that now have one canonical e-mail address. "
            "Change or remove all but one of each group, then migrate again:\n"
            + "\n".join(lines)
        )
    for user_id, email in kept:
        log.warning("user %s keeps the address %r, which is not a valid address today",
                    user_id, email)
    return changes


def upgrade():
    connection = op.get_bind()
    rows = connection.execute(sa.select(users.c.id, users.c.email)).all()
    for user_id, email in canonical_changes(rows).items():
        connection.execute(users.update().where(users.c.id == user_id).values(email=email))
    if connection.dialect.name == "mysql":
        op.execute("ALTER TABLE users MODIFY email VARCHAR(255) "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL")


def downgrade():
    if op.get_bind().dialect.name == "mysql":
        op.execute("ALTER TABLE users MODIFY email VARCHAR(255) "
                   "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL")
