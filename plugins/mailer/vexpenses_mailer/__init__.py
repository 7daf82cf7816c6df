"""The mailer plugin: every e-mail the product sends.

The hookimpls below only queue a task with ids and plain values; the task,
run after the request commits, renders the templates and delivers through
the backend chosen by ``vexpenses.mailer.backend`` (smtp, file or console).
"""

from vexpenses_core import hookimpl

from . import hookspecs, openapi, tasks
from .messages import mask


@hookimpl
def vexpenses_addhooks(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def vexpenses_check_settings(settings):
    from .settings import load_settings

    load_settings(settings)


@hookimpl
def vexpenses_includeme(config):
    config.include("vexpenses_mailer.config")


@hookimpl
def vexpenses_tasks():
    return tasks.ALL


@hookimpl
def vexpenses_openapi(spec):
    openapi.add_paths(spec)


@hookimpl
def vexpenses_export_user(request, user, limit):
    from .export import deliveries_of

    return deliveries_of(request.dbsession, user, limit)


@hookimpl
def vexpenses_erase_user(request, user):
    from .erasure import erase_user

    erase_user(request.dbsession, user)


@hookimpl(optionalhook=True)
def vexpenses_audit_labels():
    # The audit log's name for this plugin's event (it may not be enabled).
    return {"vexpenses_mail_failed": "Mail failed"}


# -- the core's accounts events (in a request; the reset link's in a task) ----


@hookimpl
def vexpenses_user_registered(request, user):
    tasks.queue_mail(request, "welcome", user.id)


@hookimpl
def vexpenses_password_reset_requested(request, user, reset_url):
    tasks.queue_mail(request, "reset", user.id, secrets_context={"reset_url": reset_url})


@hookimpl
def vexpenses_password_reset_completed(request, user, sessions_ended):
    tasks.queue_mail(request, "password_changed", user.id,
                        {"sessions_ended": int(sessions_ended or 0)})


@hookimpl
def vexpenses_password_changed(request, user, sessions_ended):
    # The same notice as after a reset: either way the password changed.
    vexpenses_password_reset_completed(request, user, sessions_ended)


@hookimpl
def vexpenses_email_verification_requested(request, user, verify_url):
    tasks.queue_mail(request, "verify_email", user.id,
                     secrets_context={"verify_url": verify_url})


@hookimpl
def vexpenses_email_change_requested(request, user, new_email, confirm_url):
    # The link to the new address, pinned: not the account's address when sent.
    # No name in it: a mistyped address is a stranger's.
    tasks.queue_mail(request, "confirm_email", user.id,
                     secrets_context={"confirm_url": confirm_url},
                     to={"name": "", "email": new_email})
    # The notice to the old one, pinned too, should the change be confirmed
    # before it is sent. It shows the new address masked, and has no link.
    tasks.queue_mail(request, "email_change_notice", user.id,
                     {"new_email": mask(new_email)},
                     to={"name": user.name, "email": user.email})


@hookimpl
def vexpenses_user_deleted(request, user, by_admin):
    # The user is detached and the row gone: the address travels (sealed) in
    # the task, and the delivery row will not keep it.
    tasks.queue_mail(request, "account_deleted", user.id, {"by_admin": bool(by_admin)},
                     to={"name": user.name, "email": user.email})


# -- the csv_import plugin's events (in a worker; csv_import may be disabled) --


@hookimpl(optionalhook=True)
def vexpenses_users_imported(request, import_id, user_ids, send_invitations):
    tasks.queue_invitations(request, import_id, user_ids, send_invitations)


@hookimpl(optionalhook=True)
def vexpenses_import_finished(request, import_id, uploader_id, status, counts,
                              send_invitations):
    tasks.queue_import_summary(request, import_id, uploader_id, status, counts,
                                  send_invitations)
