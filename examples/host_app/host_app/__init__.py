"""A host Pyramid app that adds vexpenses to routes of its own.

``host.ini`` loads it with ``use = egg:vexpenses-example-host``; every
``vexpenses.*`` setting, the plugin list included, comes from that file.
"""

import atexit

from pyramid.config import Configurator


def home(request):
    return {"app": "host"}


def main(global_config, **settings):
    """PasteDeploy app factory."""
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.add_view(home, route_name="home", request_method="GET", renderer="json")
        config.include("vexpenses_core")
    registry = config.registry

    # What vexpenses_core.make_app does after its own include:
    if registry.settings["vexpenses.auto_migrate"]:
        from vexpenses_core.migrate import upgrade

        upgrade(registry)
    app = config.make_wsgi_app()
    atexit.register(registry.queue.close)  # let in-process tasks finish at exit
    registry.pm.hook.vexpenses_app_created(registry=registry)
    return app
