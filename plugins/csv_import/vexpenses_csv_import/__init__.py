"""csv_import: bulk user import from CSV files, on background workers.

``POST /api/v1/user/upload`` stores a file; workers check it, split it into
chunks and import them in parallel; ``GET /api/v1/user/import-status/{id}``
reports progress; ``/imports`` is a page for people; ``vexpenses import``
runs an import from the command line.
"""

from vexpenses_core import hookimpl
from vexpenses_core.accounts.ratelimit import limits_storage
from vexpenses_core.redis_client import redis_key

from . import commands, hookspecs, openapi, tasks, writers
from .interfaces import IProgressStore, IUploadStorage
from .progress import RedisProgressStore
from .quotas import ImportQuotas
from .settings import read_settings
from .storage import check_storage, make_storage


def includeme(config):
    """Register settings, storage, progress, routes and the page. Safe to include twice.

    The storage and the progress store are services, one per process; a
    host app replaces either with ``config.register_service_factory``.
    """
    config.include("pyramid_services")
    registry = config.registry
    if getattr(registry, "csv_import_options", None) is None:
        registry.csv_import_options = read_settings(registry.settings)
        options = registry.csv_import_options
        # Counted in a store of their own, like the core's limits: they must
        # not depend on which rate limiter a host app puts in place.
        registry.csv_import_quotas = ImportQuotas(
            limits_storage(registry.settings), options["uploads_per_hour"],
            options["rows_per_day"])
        config.include("vexpenses_csv_import.views")
        config.include("vexpenses_csv_import.pages")
    options = registry.csv_import_options
    config.register_service(make_storage(registry.settings, options), IUploadStorage)
    config.register_service(
        RedisProgressStore(
            registry.redis,
            lambda import_id: redis_key(registry, "csv_import", "progress", import_id),
            options["progress_ttl"]),
        IProgressStore)


@hookimpl
def vexpenses_addhooks(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def vexpenses_check_settings(settings):
    check_storage(settings, read_settings(settings))


@hookimpl
def vexpenses_includeme(config):
    config.include("vexpenses_csv_import")


@hookimpl
def vexpenses_app_created(registry):
    writers.check_local_infile(registry.dbengine)


@hookimpl
def vexpenses_tasks():
    return [tasks.plan, tasks.process_chunk, tasks.remove_old_files]


@hookimpl
def vexpenses_add_commands(subparsers):
    commands.add_commands(subparsers)


@hookimpl
def vexpenses_openapi(spec):
    openapi.add_paths(spec)


@hookimpl
def vexpenses_export_user(request, user, limit):
    from .export import imports_of

    return imports_of(request.dbsession, user, limit)


@hookimpl
def vexpenses_erase_user(request, user):
    from .erasure import erase_user

    erase_user(request.dbsession, user)


@hookimpl(optionalhook=True)
def vexpenses_audit_labels():
    # The audit log's names for this plugin's events (it may not be enabled).
    return {
        "vexpenses_import_uploaded": "Upload file",
        "vexpenses_import_viewed": "Get import progress",
        "vexpenses_import_started": "Import started",
        "vexpenses_import_chunk_done": "Import chunk done",
        "vexpenses_users_imported": "Users imported",
        "vexpenses_import_finished": "Import finished",
    }
