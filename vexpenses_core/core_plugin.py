"""The core's own hookimpls: built-in features go through the same hooks as plugins."""

from . import cli
from .hookspecs import hookimpl
from .openapi import envelope, error_response
from .schemas import PluginInfo


@hookimpl(tryfirst=True)  # list the core's commands first in --help
def vexpenses_add_commands(subparsers):
    cli.add_core_commands(subparsers)
    from .accounts import commands

    commands.add_commands(subparsers)


@hookimpl
def vexpenses_tasks():
    from .accounts import tasks

    return tasks.ALL


@hookimpl
def vexpenses_openapi(spec):
    spec["paths"]["/api/v1/openapi.json"] = {
        "get": {
            "summary": "This document",
            "tags": ["meta"],
            "responses": {"200": {"description": "The OpenAPI document"}},
        }
    }
    spec["paths"]["/api/v1/plugins"] = {
        "get": {
            "summary": "Loaded plugins, their versions and hooks (admins only)",
            "tags": ["meta"],
            "security": [{"bearer": []}],
            "responses": {
                "200": envelope(spec, "Success on get plugins", list[PluginInfo]),
                "401": error_response("Missing or invalid token"),
                "403": error_response("Not an admin"),
            },
        }
    }
    from .accounts.openapi import add_paths

    add_paths(spec)
