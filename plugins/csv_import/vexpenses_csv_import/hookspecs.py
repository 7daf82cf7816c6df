"""The hooks the csv_import plugin calls, and the contract for each.

Other plugins implement them with ``@hookimpl(optionalhook=True)``, since
csv_import may not be enabled. "In a request" means while an HTTP request is
handled, inside its transaction; "in a worker" means inside a background task
(a worker process with Redis, a thread of the web process without), inside
the transaction that the docstring names. Work that must happen only if that
transaction commits goes through ``request.enqueue``. None is firstresult;
every return value is ignored. docs/csv_import.md is generated from these
docstrings (see ``vexpenses_core.hookspecs``).
"""

from vexpenses_core import hookspec

# -- Requests -----------------------------------------------------------------


@hookspec
def vexpenses_import_uploaded(request, import_id):
    """A CSV file was stored and its import created (``POST /api/v1/user/upload``).

    :param request: the upload request; the uploader is ``request.identity``.
    :param import_id: the new import's id (status 0).
    :runs: in a request, inside its transaction, which commits unless a
        hookimpl raises; processing is queued after that commit.
    """


@hookspec
def vexpenses_import_viewed(request, import_id):
    """The uploader or an admin read an import's status (``GET /import-status/{id}``).

    :param request: the status request; the reader is ``request.identity``.
    :param import_id: the import read.
    :runs: in a request, inside its transaction, which commits. Called on
        every poll: keep it cheap.
    """


# -- Workers ------------------------------------------------------------------


@hookspec
def vexpenses_import_started(request, import_id, uploader_id):
    """Processing of an import started: its file passed the file-level checks
    and was split into chunks, whose tasks are queued when this commits.

    :param request: the planning task's request.
    :param import_id: the import (now status 3).
    :param uploader_id: the uploader's user id, or ``None`` for an import run
        by ``vexpenses import`` without ``--uploader``.
    :runs: in a worker, once per import, inside the planning task's
        transaction. An import whose file fails the file-level checks does
        not start: only ``vexpenses_import_finished`` is called, with
        status 2.
    """


@hookspec
def vexpenses_import_chunk_done(request, import_id, chunk_index, counts):
    """One chunk of an import was fully processed.

    :param request: the chunk task's request.
    :param import_id: the import.
    :param chunk_index: the chunk's number, from 0.
    :param counts: that chunk's counts, a dict with the int keys ``total``,
        ``processed``, ``imported``, ``rejected`` and ``duplicates``.
    :runs: in a worker, inside the transaction that commits the chunk's last
        batch; once per chunk (a batch retried after a deadlock calls it
        again in the new transaction, and only the committed call counts).
    """


@hookspec
def vexpenses_users_imported(request, import_id, user_ids, send_invitations):
    """New users were inserted by one batch of an import. The mailer plugin
    enqueues its invitations here.

    :param request: the chunk task's request.
    :param import_id: the import.
    :param user_ids: the new users' ids, a non-empty list of ints. They have
        no password (``password_hash`` is null).
    :param send_invitations: ``True`` when the upload asked for invitations
        (its ``send_invitations`` field; the default) and may have them: an
        admin's upload, a command-line import, or anyone's when
        ``vexpenses.csv_import.invitations`` is ``everyone``. The import
        decides, so a listener need not know who uploaded.
    :runs: in a worker, inside the transaction that inserts them: enqueue the
        invitations with ``request.enqueue`` so that they go only if the
        batch commits. A batch retried after a deadlock calls it again with
        the ids of the retry; only the committed call's effects stay.
    """


@hookspec
def vexpenses_import_finished(request, import_id, uploader_id, status, counts,
                              send_invitations):
    """An import ended.

    :param request: the task's request.
    :param import_id: the import.
    :param uploader_id: as in ``vexpenses_import_started``.
    :param status: 1 (every row imported) or 2 (some rows rejected or
        duplicated, or the file failed its checks; the import's ``error``
        says why).
    :param counts: the whole import's exact counts, a dict with the int keys
        ``total``, ``processed``, ``imported``, ``rejected`` and
        ``duplicates`` (all 0 for a file that failed its checks).
    :param send_invitations: as in ``vexpenses_users_imported``.
    :runs: in a worker, exactly once per import, even when chunks are
        delivered twice: inside the transaction of the last chunk's last
        batch (or of the planning task, for a file that failed its checks).
    """
