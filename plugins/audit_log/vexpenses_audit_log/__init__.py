"""vexpenses audit_log: a tamper-evident record of every hook call.

The recorder watches the plugin manager (pluggy's hook-call monitoring), so
it sees every hook of the core and of every plugin without any hookimpl
knowing. Rows are written off the request's path, hash-chained, and read
through ``GET /api/v1/log`` and ``GET /api/v1/log/{id}``.
"""

from vexpenses_core import hookimpl

from . import commands, hookspecs, lifecycle, openapi


@hookimpl
def vexpenses_addhooks(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def vexpenses_check_settings(settings):
    from .config import parse_settings

    parse_settings(settings)


@hookimpl
def vexpenses_includeme(config):
    config.include("vexpenses_audit_log.recorder")
    config.include("vexpenses_audit_log.views")


@hookimpl
def vexpenses_add_commands(subparsers):
    commands.add_commands(subparsers)


@hookimpl
def vexpenses_openapi(spec):
    openapi.add_paths(spec)


@hookimpl
def vexpenses_export_user(request, user, limit):
    from .export import rows_of

    return rows_of(request.dbsession, user, limit)


@hookimpl
def vexpenses_erase_user(request, user):
    from .erasure import erase

    erase(request, user)


@hookimpl
def vexpenses_app_created(registry):
    lifecycle.start(registry)
