"""The mailer's own hooks, added through ``vexpenses_addhooks``.

Another plugin implements them with ``@hookimpl(optionalhook=True)``, since
the mailer may be disabled. docs/mailer.md is generated from these
docstrings (see ``vexpenses_core.hookspecs``).
"""

from vexpenses_core import hookspec


@hookspec
def vexpenses_mail_failed(request, message_id, to, kind, error):
    """An e-mail will not be delivered: the server refused it for good (a 5xx
    reply), its address is invalid, or temporary failures outlasted the retries.
    Also when its worker died during the send: the server may have it, and it
    is not sent again (``interrupted during attempt 1: ...``).

    :param request: the sending task's request.
    :param message_id: the id of the e-mail's row in ``mail_deliveries``.
    :param to: the recipient's address; ``(erased)`` for ``account_deleted``,
        whose person asked to be forgotten.
    :param kind: ``welcome``, ``reset``, ``password_changed``, ``invitation``,
        ``import_finished``, ``verify_email``, ``confirm_email``,
        ``email_change_notice`` or ``account_deleted``.
    :param error: the server's reply or the reason, e.g. ``550 5.1.1 no such
        user`` or ``gave up after 5 attempts: 421 ...``; never a link or a
        password.
    :runs: in a worker, inside the sending task's transaction that records
        the failure: rows written to ``request.dbsession`` commit with the
        delivery record. A hookimpl that raises is logged; the delivery
        record is kept.
    """
