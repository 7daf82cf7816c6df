"""An example third-party plugin, written only against vexpenses' public API.

It greets people: ``POST /api/v1/hello/greetings`` stores a greeting and
queues the ``hello.greet`` task, which a worker completes. Its table's
migrations are found in ``migrations/`` beside this file, with no hook.
"""

from vexpenses_core import hookimpl

from . import commands, tasks


@hookimpl
def vexpenses_includeme(config):
    config.include("vexpenses_hello.views")


@hookimpl
def vexpenses_tasks():
    return [tasks.greet]


@hookimpl
def vexpenses_add_commands(subparsers):
    commands.add_commands(subparsers)


@hookimpl
def vexpenses_openapi(spec):
    spec["paths"]["/api/v1/hello/greetings"] = {
        "post": {
            "summary": "Queue a greeting",
            "tags": ["hello"],
            "requestBody": {"content": {"application/json": {"schema": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
            }}}},
            "responses": {"201": {"description": "Greeting queued"}},
        }
    }
    spec["paths"]["/api/v1/hello/greetings/{id}"] = {
        "get": {
            "summary": "One greeting",
            "tags": ["hello"],
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "The greeting"}},
        }
    }
