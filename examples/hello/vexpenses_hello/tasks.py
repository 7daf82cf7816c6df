from vexpenses_core import task

from . import services


@task(name="hello.greet")
def greet(request, greeting_id):
    return services.greet(request.dbsession, greeting_id)
