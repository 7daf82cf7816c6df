"""The audit log's part of deleting an account (``vexpenses_erase_user``).

The rows stay, and so does the chain: only their details (the side table,
``audit_log_details``) are emptied. See :func:`vexpenses_audit_log.chain.erase_user`
and docs/audit_log.md's "Erasure".
"""

import logging

from . import chain

log = logging.getLogger(__name__)


def erase(request, user):
    """Erase the details of the rows about ``user``, in the request's transaction.

    The process's own buffer is not flushed first: on SQLite the request
    already holds the write lock, so a flush would wait on itself. Records
    still buffered here, or waiting in Redis, meet the tombstone instead.
    """
    key = request.registry.audit_log_settings.chain_key
    conn = request.dbsession.connection()
    # Their earlier addresses too: a failed login for the one they left
    # names no user id.
    emails = [user.email, *sorted(chain.past_addresses(conn, user.id) - {user.email})]
    count = chain.erase_user(conn, user.id, emails, key)
    log.info("erased the details of %d audit rows about user %d", count, user.id)
    return count
