"""A stand-in third-party plugin for the audit_log tests. Never installed.

The tests put this folder on ``sys.path`` (and on the ``PYTHONPATH`` of a
real worker); its ``.dist-info`` makes it an installed plugin named
``audit_standin`` there. It knows nothing of the audit log except, as any
plugin may, a label for one of its hooks. It adds two hooks of its own:

- ``vexpenses_greeting_queued``, fired in the web request that queues a task;
- ``vexpenses_greeting_sent``, fired by that task, in a worker.

It also keeps the password reset links it is given, as a mailer would mail
them, so that the tests can follow them.
"""


from vexpenses_core import hookimpl, hookspec, task
from vexpenses_core.api import json_body, success


class Specs:
    @hookspec
    def vexpenses_greeting_queued(self, request, name):
        """A greeting was queued (in a request)."""

    @hookspec
    def vexpenses_greeting_sent(self, request, name, api_token, note, link, owner):
        """A greeting was sent (in a worker)."""


@task(name="audit_standin.greet")
def greet(request, name, api_token, note, link, user_id):
    from vexpenses_core.models import User

    owner = request.dbsession.get(User, user_id)
    request.pm.hook.vexpenses_greeting_sent(
        request=request, name=name, api_token=api_token, note=note, link=link, owner=owner
    )
    key = request.redis_key("audit_standin", "sent", name)
    request.redis.set(key, request.environ.get("vexpenses.request_id") or "")


def queue_greeting(request):
    body = json_body(request)
    name = str(body.get("name", "friend"))
    request.pm.hook.vexpenses_greeting_queued(request=request, name=name)
    request.enqueue(greet, name, str(body.get("api_token", "")), str(body.get("note", "")),
                    str(body.get("link", "")), request.authenticated_userid)
    return success(request, "Greeting queued", {"name": name}, status=201)


@hookimpl
def vexpenses_addhooks(pm):
    pm.add_hookspecs(Specs)


@hookimpl
def vexpenses_includeme(config):
    config.add_route("audit_standin.greet", "/api/v1/standin/greet")
    config.add_view(queue_greeting, route_name="audit_standin.greet", request_method="POST",
                    permission="authenticated", renderer="json")


@hookimpl
def vexpenses_tasks():
    return [greet]


@hookimpl(optionalhook=True)
def vexpenses_audit_labels():
    return {"vexpenses_greeting_queued": "Greeting queued"}


@hookimpl
def vexpenses_password_reset_requested(request, user, reset_url):
    request.registry.__dict__.setdefault("standin_reset_urls", []).append(reset_url)
