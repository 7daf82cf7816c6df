"""The hooks this plugin offers to others. Added with ``vexpenses_addhooks``.

A plugin implementing one marks it ``@hookimpl(optionalhook=True)``: the
audit log may not be enabled. docs/audit_log.md is generated from these
docstrings (see ``vexpenses_core.hookspecs``).
"""

from vexpenses_core import hookspec


@hookspec
def vexpenses_audit_labels():
    """Name the actions of your hooks in the audit log.

    :return: ``{hook name: label}``, e.g.
        ``{"vexpenses_invoice_paid": "Invoice paid"}``. A hook without a label
        gets one made from its name ("Invoice paid" here too); the setting
        ``vexpenses.audit_log.labels`` wins over any hookimpl.
    :runs: once at start-up, while the app is configured; not in a request.
        Its own call is not recorded.
    """


@hookspec
def vexpenses_audit_pruned(request, deleted, cutoff, first_kept_id):
    """``vexpenses audit prune`` deleted the audit rows created before ``cutoff``.

    :param request: the command's request (no user, no client address).
    :param deleted: how many rows were deleted (possibly 0).
    :param cutoff: the aware UTC datetime before which rows were deleted.
    :param first_kept_id: the id of the chain's first row from now on.
    :runs: in the command, not in an HTTP request; the audit log records it
        like any other hook call, as a job's row.
    """
