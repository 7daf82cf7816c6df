"""A host Pyramid app that adds vexpenses to routes of its own.

``host.ini`` loads it with ``use = egg:vexpenses-example-host``; every
``vexpenses.*`` setting, the plugin list included, comes from that file.
"""

from pyramid.config import Configurator

from vexpenses_core import make_wsgi_app


def home(request):
    return {"app": "host"}


def main(global_config, **settings):
    """PasteDeploy app factory."""
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.add_view(home, route_name="home", request_method="GET", renderer="json")
        config.include("vexpenses_core")
    # Instead of config.make_wsgi_app(): also migrates (when asked), lets
    # in-process tasks finish at exit and fires vexpenses_app_created.
    return make_wsgi_app(config)
