import os
import time

from vexpenses_core.db import utcnow

from .models import Greeting


def create_greeting(dbsession, name):
    greeting = Greeting(name=name)
    dbsession.add(greeting)
    dbsession.flush()
    return greeting


def greet(request, greeting_id, delay=0.0):
    """Complete a greeting. Counts its runs in Redis so tests can watch redelivery."""
    redis = request.redis
    redis.incr(request.redis_key("hello", "runs", greeting_id))
    redis.set(request.redis_key("hello", "pid", greeting_id), os.getpid())
    redis.set(request.redis_key("hello", "request", greeting_id), request.request_id)
    if delay:
        time.sleep(delay)
    greeting = request.dbsession.get(Greeting, greeting_id)
    if greeting is None:  # deleted meanwhile: nothing to do
        return None
    greeting.message = f"Hello, {greeting.name}!"
    greeting.greeted_at = utcnow()
    return greeting.message
