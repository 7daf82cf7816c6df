"""Background tasks: each loads by id and calls the service.

Links with secret tokens travel sealed (``Mailer.seal``): only these tasks open them.
"""

from vexpenses_core import task

from . import services


@task(name="mailer.send")
def send(request, kind, user_id, context, language, key):
    services.MailService(request).send_to_user(kind, user_id, context, language, key)


@task(name="mailer.invite")
def invite(request, import_id, user_ids, language):
    services.MailService(request).create_invitations(import_id, user_ids, language)


@task(name="mailer.send_invitations")
def send_invitations(request, import_id, sealed_invitations, language):
    services.MailService(request).send_invitations(import_id, sealed_invitations, language)


@task(name="mailer.import_finished")
def import_finished(request, import_id, uploader_id, status, counts, invitations, language):
    services.MailService(request).import_finished(
        import_id, uploader_id, status, counts, invitations, language
    )


ALL = [send, invite, send_invitations, import_finished]
