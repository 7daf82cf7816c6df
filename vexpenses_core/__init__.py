"""vexpenses: accounts for Pyramid business APIs.

A host app enables it with ``config.include("vexpenses_core")``; the
assembled service uses :func:`main` through PasteDeploy.
"""

import atexit
from logging import getLogger  # the name logging is our .logging module here

from pyramid.config import Configurator

# What a plugin needs, importable from the package root (see docs/writing-a-plugin.md).
from .api import APIError, NotFound, ValidationError, json_body, success
from .db import Base, UTCDateTime, utcnow
from .hookspecs import hookimpl, hookspec
from .logging import install_record_factory
from .openapi import envelope, error_response, request_body, response, schema_ref
from .plugins import check_configuration
from .request_class import build_request_class
from .routing import straighten_routes
from .schemas import Body, Reply, invalid, validate
from .scripting import bootstrap_app
from .settings import ConfigurationError
from .tasks import task

log = getLogger(__name__)

__all__ = [
    # plugin API
    "APIError", "Base", "ConfigurationError", "NotFound", "UTCDateTime", "ValidationError",
    "bootstrap_app", "hookimpl", "hookspec", "json_body", "success", "task", "utcnow",
    # one declaration per body: validation and the OpenAPI schema (docs/writing-a-plugin.md)
    "Body", "Reply", "envelope", "error_response", "invalid", "request_body", "response",
    "schema_ref", "validate",
    # host apps
    "includeme", "main", "make_app", "make_wsgi_app",
]


def includeme(config):
    """Add vexpenses to a Pyramid app. Safe to include twice."""
    registry = config.registry
    if getattr(registry, "vexpenses_included", False):
        return
    registry.vexpenses_included = True

    # Before the plugins are imported: the ini files' formats use %(request_id)s.
    install_record_factory()
    # Every problem of the core's and the enabled plugins' settings, at once.
    settings = config.get_settings()
    normalized, pm, problems = check_configuration(settings)
    problems.raise_if_any()
    settings.update(normalized)
    registry.pm = pm

    config.include("pyramid_services")
    config.include(".api")
    config.include(".proxies")
    config.include(".plugins")
    config.include(".db")
    config.include(".redis_client")
    config.include(".tasks")
    config.include(".security")
    config.include(".identity")
    config.include(".openapi")
    config.include(".introspection")
    config.include(".accounts")

    pm = registry.pm
    pm.hook.vexpenses_includeme(config=config)
    from .openapi import build_document
    from .tasks import register_tasks

    register_tasks(registry, [fn for found in pm.hook.vexpenses_tasks() for fn in found])
    # Built now, so that two plugins claiming one path fail start-up, not a request.
    registry.openapi_document = build_document(registry)


def make_wsgi_app(config):
    """Finish a configurator that includes vexpenses and return its WSGI app.

    Use it in place of ``config.make_wsgi_app()`` in a host app: it also
    migrates when ``vexpenses.auto_migrate`` is on, lets in-process tasks
    finish when the process exits cleanly, and fires ``vexpenses_app_created``.
    """
    registry = config.registry
    if registry.settings["vexpenses.auto_migrate"]:
        from .migrate import upgrade

        applied = upgrade(registry)
        if applied:
            log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
    app = config.make_wsgi_app()
    build_request_class(app)
    straighten_routes(app)
    atexit.register(registry.queue.close)
    registry.pm.hook.vexpenses_app_created(registry=registry)
    return app


def make_app(settings):
    """Build the WSGI app of the assembled service from a settings dict."""
    with Configurator(settings=settings) as config:
        config.include("vexpenses_core")
    return make_wsgi_app(config)


def main(global_config, **settings):
    """PasteDeploy app factory: ``use = egg:vexpenses-core``.

    A configuration error, or a database or Redis that cannot be reached,
    stops ``pserve`` with one line per problem and no traceback: the
    :class:`~vexpenses_core.scripting.StartupFailed` raised is a
    ``SystemExit``. :func:`make_app` and ``config.include`` raise the error
    itself, for host apps.
    """
    from .scripting import StartupFailed, startup_problems

    try:
        return make_app(settings)
    except Exception as exc:
        if startup_problems(exc) is None:
            raise
        raise StartupFailed(exc) from None
