"""A stand-in plugin for the core's tests. Never installed.

tests/conftest.py puts this folder on ``sys.path`` and on the ``PYTHONPATH``
of subprocesses; its ``.dist-info`` makes it an installed plugin named
``standin`` there. It holds the switches the core's tests need and a plugin
template has no use for. ``POST /api/v1/standin/greetings`` stores one of
hello's greetings and queues ``standin.greet``, and takes two more fields:

- ``delay``: seconds the task sleeps before it greets;
- ``fail``: raise after queueing, to prove an aborted request sends nothing.

The task counts its runs and records its process id and request id in Redis
(``standin:runs|pid|request:<id>``), so that the tests can watch redelivery.
"""

import os
import time

from vexpenses_hello import services
from vexpenses_hello.views import greeting_dict

from vexpenses_core import ValidationError, hookimpl, json_body, success, task


@task(name="standin.greet")
def greet(request, greeting_id, delay=0.0):
    redis = request.redis
    redis.incr(request.redis_key("standin", "runs", greeting_id))
    redis.set(request.redis_key("standin", "pid", greeting_id), os.getpid())
    redis.set(request.redis_key("standin", "request", greeting_id), request.request_id)
    if delay:
        time.sleep(delay)
    return services.greet(request.dbsession, greeting_id)


def create_greeting(request):
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValidationError({"name": ["The name field is required."]})
    delay = body.get("delay", 0)
    if not isinstance(delay, int | float) or not 0 <= delay <= 60:
        raise ValidationError({"delay": ["The delay must be a number from 0 to 60."]})
    greeting = services.create_greeting(request.dbsession, name.strip()[:100])
    request.enqueue(greet, greeting.id, delay=delay)
    if body.get("fail"):
        raise RuntimeError("failing on purpose after queueing a task")
    return success(request, "Greeting queued", greeting_dict(greeting), status=201)


@hookimpl
def vexpenses_includeme(config):
    config.add_route("standin.greetings", "/api/v1/standin/greetings")
    config.add_view(create_greeting, route_name="standin.greetings", request_method="POST",
                    renderer="json")


@hookimpl
def vexpenses_tasks():
    return [greet]


@hookimpl
def vexpenses_app_created(registry):
    registry.standin_ready = True

