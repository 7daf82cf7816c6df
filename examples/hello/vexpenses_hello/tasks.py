from vexpenses_core import task

from . import services


@task(name="hello.greet")
def greet(request, greeting_id, delay=0.0):
    return services.greet(request, greeting_id, delay)
