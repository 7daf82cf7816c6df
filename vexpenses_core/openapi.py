"""The OpenAPI 3.1 document, assembled from the core and every enabled plugin,
and an interactive page for it served from local assets (no CDN)."""

import copy

from pyramid.response import Response

from .settings import ConfigurationError


def error_response(description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Failure"}}},
    }


def base_document(registry):
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vexpenses API",
            "version": registry.pm.vexpenses_dists["core"][1] or "0",
        },
        "servers": [{"url": registry.settings["vexpenses.base_url"]}],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {
                "Failure": {
                    "type": "object",
                    "required": ["status", "message", "errors"],
                    "properties": {
                        "status": {"const": False},
                        "message": {"type": "string"},
                        "errors": {
                            "oneOf": [
                                {"type": "string"},
                                {
                                    "type": "object",
                                    "additionalProperties": {
                                        "type": "array", "items": {"type": "string"},
                                    },
                                },
                            ]
                        },
                    },
                },
            },
        },
    }


class PathCollector(dict):
    """A dict of paths that refuses to let two contributors define the same one."""

    def __setitem__(self, key, value):
        if key in self:
            raise ConfigurationError(f"two plugins define the OpenAPI path {key!r}")
        super().__setitem__(key, value)

    def update(self, other=(), **kwargs):
        for key, value in dict(other, **kwargs).items():
            self[key] = value

    def setdefault(self, key, default=None):
        if key in self:
            raise ConfigurationError(f"two plugins define the OpenAPI path {key!r}")
        self[key] = default
        return default


def build_document(registry):
    spec = base_document(registry)
    paths = PathCollector()
    spec["paths"] = paths
    registry.pm.hook.vexpenses_openapi(spec=spec)
    spec["paths"] = dict(sorted(paths.items()))
    return spec


def openapi_view(request):
    request.response.content_type = "application/json"
    return copy.deepcopy(request.registry.openapi_document)


DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vexpenses API</title>
<link rel="stylesheet" href="{static}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{static}/swagger-ui-bundle.js"></script>
<script src="{static}/init.js" data-spec="{spec}"></script>
</body></html>
"""

INIT_JS = """(function () {
  var spec = document.currentScript.getAttribute("data-spec");
  window.ui = SwaggerUIBundle({url: spec, dom_id: "#swagger-ui", deepLinking: true});
})();
"""


def docs_view(request):
    static = request.static_url("vexpenses_core:static/swagger-ui/").rstrip("/")
    html = DOCS_PAGE.format(static=static, spec=request.route_url("vexpenses.openapi"))
    return Response(html, content_type="text/html", charset="utf-8")


def init_js_view(request):
    return Response(INIT_JS, content_type="application/javascript", charset="utf-8")


def includeme(config):
    config.add_route("vexpenses.openapi", "/api/v1/openapi.json")
    config.add_view(openapi_view, route_name="vexpenses.openapi", renderer="json",
                    request_method="GET")
    config.add_route("vexpenses.docs", "/api/v1/docs")
    config.add_view(docs_view, route_name="vexpenses.docs", request_method="GET")
    config.add_route("vexpenses.docs_init", "/api/v1/docs/static/init.js")
    config.add_view(init_js_view, route_name="vexpenses.docs_init", request_method="GET")
    config.add_static_view("api/v1/docs/static", "vexpenses_core:static/swagger-ui/",
                           cache_max_age=3600)
