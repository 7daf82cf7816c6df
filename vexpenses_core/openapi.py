"""The OpenAPI 3.1 document, assembled from the core and every enabled plugin,
and an interactive page for it served from local assets (no CDN)."""

import copy
import html

from pyramid.response import Response

from .pages import html_page
from .settings import ConfigurationError


def error_response(description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Failure"}}},
    }


def limited_response(description="Too many attempts; see Retry-After"):
    """A 429, with the Retry-After header (seconds) that docs/accounts.md promises."""
    response = error_response(description)
    response["headers"] = {"Retry-After": {
        "required": True, "description": "seconds to wait",
        "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return response


def body_refused():
    """What any route with a request body can answer before its view reads it."""
    return {
        "413": error_response("The body is larger than vexpenses.max_body_bytes"),
        "422": error_response("Validation failed, or the body is not a JSON object"),
    }


def envelope(message, data=None):
    """A success response: ``{"status": true, "message": message, "data": data}``."""
    return {"description": message, "content": {"application/json": {"schema": {
        "type": "object",
        "required": ["status", "message", "data"],
        "properties": {"status": {"const": True}, "message": {"const": message},
                       "data": data if data is not None else {"type": "null"}},
    }}}}


# A page is a page in Laravel's sense: anything that is not a positive integer
# (0, -1, "abc") is page 1, never an error, so the schema accepts any value.
PAGE = {"name": "page", "in": "query", "required": False,
        "description": "The page, from 1. Anything that is not a positive integer is page 1, "
                       "as in Laravel; a page past the last is empty.",
        "schema": {"type": ["integer", "string"], "default": 1}}


def paginator(item):
    """Laravel's LengthAwarePaginator (docs/accounts.md) of ``item`` schemas."""
    nullable_int = {"type": ["integer", "null"]}
    nullable_url = {"type": ["string", "null"]}
    return {
        "type": "object",
        "required": ["current_page", "data", "first_page_url", "from", "last_page",
                     "last_page_url", "links", "next_page_url", "path", "per_page",
                     "prev_page_url", "to", "total"],
        "properties": {
            "current_page": {"type": "integer", "minimum": 1},
            "data": {"type": "array", "maxItems": 10, "items": item},
            "first_page_url": {"type": "string"},
            "from": nullable_int,
            "last_page": {"type": "integer", "minimum": 1},
            "last_page_url": {"type": "string"},
            "links": {"type": "array", "items": {
                "type": "object", "required": ["url", "label", "active"],
                "properties": {"url": nullable_url, "label": {"type": "string"},
                               "active": {"type": "boolean"}}}},
            "next_page_url": nullable_url,
            "path": {"type": "string"},
            "per_page": {"const": 10},
            "prev_page_url": nullable_url,
            "to": nullable_int,
            "total": {"type": "integer", "minimum": 0},
        },
    }


def base_document(registry):
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vexpenses API",
            "version": registry.pm.vexpenses_dists["core"][1] or "0",
        },
        # Relative, filled in per request (see openapi_view): never the Host header.
        "servers": [{"url": "/"}],
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
    document = copy.deepcopy(request.registry.openapi_document)
    # A relative server works wherever the page was opened (localhost, 127.0.0.1,
    # the public name) and cannot be pointed elsewhere by a forged Host header.
    # SCRIPT_NAME is set by the server or a host app's mount, not by the client.
    document["servers"] = [{"url": request.script_name or "/"}]
    return document


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
    # Paths, not URLs: nothing on the page comes from the Host header.
    static = request.static_path("vexpenses_core:static/swagger-ui/").rstrip("/")
    page = DOCS_PAGE.format(static=html.escape(static),
                            spec=html.escape(request.route_path("vexpenses.openapi")))
    return html_page(page, DOCS_CSP)


# The page headers' policy, plus the data: images that swagger-ui's stylesheet uses.
DOCS_CSP = "img-src 'self' data:"


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
