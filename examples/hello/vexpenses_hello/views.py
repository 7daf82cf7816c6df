from vexpenses_core import NotFound, json_body, success, validate

from . import services, tasks
from .models import Greeting
from .schemas import HelloGreeting, HelloNewGreeting


def greeting_dict(greeting):
    """A greeting as the API answers it, dumped from its published model."""
    return HelloGreeting.model_validate(greeting, from_attributes=True).model_dump()


def create_greeting(request):
    body = validate(HelloNewGreeting, json_body(request))
    greeting = services.create_greeting(request.dbsession, body.name)
    request.enqueue(tasks.greet, greeting.id)
    return success(request, "Greeting queued", greeting_dict(greeting), status=201)


def get_greeting(request):
    try:
        greeting = request.dbsession.get(Greeting, int(request.matchdict["id"]))
    except ValueError:
        greeting = None
    if greeting is None:
        raise NotFound()
    return success(request, "Greeting", greeting_dict(greeting))


def includeme(config):
    config.add_route("hello.greetings", "/api/v1/hello/greetings")
    config.add_route("hello.greeting", "/api/v1/hello/greetings/{id}")
    config.add_view(create_greeting, route_name="hello.greetings", request_method="POST",
                    renderer="json")
    config.add_view(get_greeting, route_name="hello.greeting", request_method="GET",
                    renderer="json")
