"""Forgetting a user whose account is deleted (``vexpenses_erase_user``).

Their delivery rows go: each names the address, and the subject may quote
the name. Deleted, not blanked: a row without its person says nothing
useful, and a task still queued for them finds the user gone and sends
nothing. The one e-mail sent afterwards, ``account_deleted``, keeps no
address in its row (``services.AFTER_DELETION``).
"""

from sqlalchemy import delete, or_

from .models import MailDelivery


def erase_user(dbsession, user):
    """Delete every delivery row of ``user``, or to their address; return how many."""
    result = dbsession.execute(
        delete(MailDelivery)
        .where(or_(MailDelivery.user_id == user.id, MailDelivery.recipient == user.email))
        .execution_options(synchronize_session=False))
    return result.rowcount
