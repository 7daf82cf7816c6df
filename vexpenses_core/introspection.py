"""An admin-only route listing the loaded plugins, their versions and hooks."""

from .api import success
from .plugins import plugin_info


def plugins_view(request):
    return success(request, "Success on get plugins", plugin_info(request.pm))


def includeme(config):
    config.add_route("vexpenses.plugins", "/api/v1/plugins")
    config.add_view(plugins_view, route_name="vexpenses.plugins", renderer="json",
                    request_method="GET", permission="admin")
