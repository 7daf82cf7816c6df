"""Forgetting a user whose account is deleted (``vexpenses_erase_user``).

Their delivery rows go: each names the address, and the subject may quote
the name. Deleted, not blanked: a row without its person says nothing
useful, and a task still queued for them finds the user gone and sends
nothing. The one e-mail sent afterwards, ``account_deleted``, keeps no
address in its row (``services.AFTER_DELETION``).
"""

from sqlalchemy import delete, select

from .models import MailDelivery


def erase_user(dbsession, user):
    """Delete every delivery row of ``user``, or to their address; return how many."""
    deleted = dbsession.execute(
        delete(MailDelivery).where(MailDelivery.user_id == user.id)
        .execution_options(synchronize_session=False)).rowcount
    # Rows to the address without the user (from before their user_id was
    # cleared). Compared here, byte for byte: MariaDB's default collation
    # takes josé@ and jose@, two people, for one.
    orphans = [row_id for row_id, recipient in dbsession.execute(
        select(MailDelivery.id, MailDelivery.recipient)
        .where(MailDelivery.recipient == user.email)) if recipient == user.email]
    if orphans:
        deleted += dbsession.execute(
            delete(MailDelivery).where(MailDelivery.id.in_(orphans))
            .execution_options(synchronize_session=False)).rowcount
    return deleted
