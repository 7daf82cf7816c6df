from vexpenses_core import utcnow

from .models import Greeting


def create_greeting(dbsession, name):
    greeting = Greeting(name=name)
    dbsession.add(greeting)
    dbsession.flush()
    return greeting


def greet(dbsession, greeting_id):
    """Complete a greeting. Running it twice does no harm: a task may be delivered again."""
    greeting = dbsession.get(Greeting, greeting_id)
    if greeting is None:  # deleted meanwhile: nothing to do
        return None
    greeting.message = f"Hello, {greeting.name}!"
    greeting.greeted_at = utcnow()
    return greeting.message
