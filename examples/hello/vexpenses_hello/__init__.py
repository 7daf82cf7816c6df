"""An example third-party plugin, written only against vexpenses' public API.

It greets people: ``POST /api/v1/hello/greetings`` stores a greeting and
queues the ``hello.greet`` task, which a worker completes. Its table's
migrations are found in ``migrations/`` beside this file, with no hook.
"""

from vexpenses_core import envelope, error_response, hookimpl, request_body

from . import commands, tasks
from .schemas import HelloGreeting, HelloNewGreeting


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
            "requestBody": request_body(spec, HelloNewGreeting),
            "responses": {
                "201": envelope(spec, "Greeting queued", HelloGreeting),
                "422": error_response("No name"),
            },
        }
    }
    spec["paths"]["/api/v1/hello/greetings/{id}"] = {
        "get": {
            "summary": "One greeting",
            "tags": ["hello"],
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {
                "200": envelope(spec, "Greeting", HelloGreeting),
                "404": error_response("No such greeting"),
            },
        }
    }
