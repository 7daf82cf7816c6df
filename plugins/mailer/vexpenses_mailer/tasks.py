"""Queueing the mailer's messages, and the background tasks that send them.

The ``queue_*`` functions run in a request (from hookimpls) and queue a task
with ids and plain values; each task loads by id and calls the service.
Links with secret tokens travel sealed (``Mailer.seal``): only these tasks open them.
"""

import uuid

from vexpenses_core import task

from .services import COUNT_KEYS, MailService

# -- in the request: queue -------------------------------------------------------


def queue_mail(request, kind, user_id, context=None, secrets_context=None, to=None):
    """Send ``kind`` to a user once the request commits; nothing if it aborts.

    ``context`` holds plain values for the templates. ``secrets_context`` (the
    reset, verification and confirmation links) crosses the queue sealed, and
    is never logged or stored. ``to`` (``{"name", "email"}``) is the recipient
    when it is not the user's current address at sending time: the new
    address of an e-mail change, the old one for its notice, a deleted
    user's. It crosses sealed too: it may be the address of a person who
    asked to be forgotten.
    """
    mailer = request.registry.mailer
    language = mailer.templates.pick_language(request)
    context = dict(context or {})
    if secrets_context:
        context["sealed"] = mailer.seal(secrets_context)
    extra = {"to": mailer.seal(to)} if to else {}
    # Made here, once per event: a redelivered task finds its row and stops.
    key = f"{kind}:{uuid.uuid4().hex}"
    request.enqueue(send, kind, user_id, context, language, key, **extra)


def queue_invitations(request, import_id, user_ids, send_invitations):
    settings = request.registry.mailer.settings
    if not (send_invitations and settings.invitations and user_ids):
        return
    language = request.registry.mailer.templates.pick_language(request)
    request.enqueue(invite, int(import_id), [int(i) for i in user_ids], language)


def queue_import_summary(request, import_id, uploader_id, status, counts, send_invitations):
    if uploader_id is None:
        return
    settings = request.registry.mailer.settings
    language = request.registry.mailer.templates.pick_language(request)
    counts = {key: _count(counts, key) for key in COUNT_KEYS}
    request.enqueue(import_finished, int(import_id), int(uploader_id), int(status),
                    counts, bool(send_invitations and settings.invitations), language)


def _count(counts, key):
    value = (counts or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# -- the tasks -------------------------------------------------------------------


# The sending tasks commit each message's row before and after the server is
# asked (``MailService._send``): never in one transaction with the send.
@task(name="mailer.send", own_transactions=True)
def send(request, kind, user_id, context, language, key, to=None):
    MailService(request).send_to_user(kind, user_id, context, language, key, to)


@task(name="mailer.invite")
def invite(request, import_id, user_ids, language):
    # Sent when this task commits, so every link already works when mailed.
    for sealed in MailService(request).create_invitations(import_id, user_ids):
        request.enqueue(send_invitations, import_id, sealed, language)


@task(name="mailer.send_invitations", own_transactions=True)
def send_invitations(request, import_id, sealed_invitations, language):
    MailService(request).send_invitations(import_id, sealed_invitations, language)


@task(name="mailer.import_finished", own_transactions=True)
def import_finished(request, import_id, uploader_id, status, counts, invitations, language):
    MailService(request).import_finished(
        import_id, uploader_id, status, counts, invitations, language
    )


ALL = [send, invite, send_invitations, import_finished]
