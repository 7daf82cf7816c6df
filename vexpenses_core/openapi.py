"""The OpenAPI 3.1 document, assembled from the core and every enabled plugin,
and an interactive page for it served from local assets (no CDN).

Every request and response body in it is generated from a pydantic model
(vexpenses_core.schemas): :func:`request_body`, :func:`envelope` and
:func:`schema_ref` add a model's schema to the components and return a
reference to it, so the document says what the code checks and answers.
"""

import copy
import functools
import html
import re
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field, create_model
from pyramid.response import Response

from .pages import html_page
from .settings import ConfigurationError

REF = "#/components/schemas/{model}"


class Failure(BaseModel):
    """The error envelope: ``{"status": false, "message": ..., "errors": ...}``."""

    status: Literal[False]
    message: str
    errors: str | dict[str, list[str]]


class Success(BaseModel):
    status: Literal[True]


class PageLink(BaseModel):
    url: str | None
    label: str
    active: bool


Item = TypeVar("Item")


class Paginator(BaseModel, Generic[Item]):
    """Laravel's LengthAwarePaginator (docs/accounts.md)."""

    current_page: int = Field(ge=1)
    data: list[Item] = Field(description="At most `per_page` items.")
    first_page_url: str
    from_: int | None = Field(alias="from")
    last_page: int = Field(ge=1)
    last_page_url: str
    links: list[PageLink]
    next_page_url: str | None
    path: str
    per_page: int = Field(ge=1, description="10 in the accounts API and the bundled "
                                             "plugins' lists, as in the original app.")
    prev_page_url: str | None
    to: int | None
    total: int = Field(ge=0)


def component_name(model):
    """The component a model is published as (pydantic's own spelling for generics)."""
    return re.sub(r"[^a-zA-Z0-9.\-_]", "_", model.__name__)


def schema_ref(spec, model, mode="serialization"):
    """Add ``model``'s schema and the models it uses to the components; return a ``$ref``.

    ``mode`` is "validation" for what a client sends, "serialization" for
    what it gets back. A name two different schemas claim fails start-up.
    """
    schema = model.model_json_schema(ref_template=REF, mode=mode)
    found = {**schema.pop("$defs", {}), component_name(model): schema}
    components = spec["components"]["schemas"]
    for name, value in found.items():
        if name in components and components[name] != value:
            raise ConfigurationError(f"two models publish the OpenAPI schema {name!r}")
        components[name] = value
        spec.generated.add(name)
    return {"$ref": REF.format(model=component_name(model))}


def request_body(spec, model, media_type="application/json"):
    """A required request body that ``model`` validates."""
    return {"required": True,
            "content": {media_type: {"schema": schema_ref(spec, model, "validation")}}}


def response(spec, description, model, media_type="application/json"):
    """A response whose body is ``model``."""
    return {"description": description,
            "content": {media_type: {"schema": schema_ref(spec, model)}}}


@functools.cache
def success_model(message, data=None):
    """The success envelope of ``message`` with ``data`` (a type; None for null)."""
    name = "".join(word[:1].upper() + word[1:] for word in re.findall(r"[A-Za-z0-9]+", message))
    return create_model(name, __base__=Success, message=(Literal[message], ...),
                        data=(data, ...))


def envelope(spec, message, data=None):
    """A success response: ``{"status": true, "message": message, "data": data}``."""
    return response(spec, message, success_model(message, data))


def error_response(description):
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Failure")}}},
    }


def limited_response(description="Too many attempts; see Retry-After"):
    """A 429, with the Retry-After header (seconds) that docs/accounts.md promises."""
    limited = error_response(description)
    limited["headers"] = {"Retry-After": {
        "required": True, "description": "seconds to wait",
        "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return limited


def body_refused():
    """What any route with a request body can answer before its view reads it."""
    return {
        "413": error_response("The body is larger than vexpenses.max_body_bytes"),
        "422": error_response("Validation failed, or the body is not a JSON object"),
    }


def parameters(spec, model):
    """The query parameters ``model`` (a :class:`~vexpenses_core.schemas.Query`) reads.

    Each field is one parameter, named as sent, with its JSON schema and
    description; the document remembers them, so that :func:`hand_written`
    can tell them from parameters written by hand.
    """
    schema = model.model_json_schema(mode="validation")
    if "$defs" in schema:
        raise ConfigurationError(f"{model.__name__}: a query parameter must be a plain value")
    required = schema.get("required", ())
    found = []
    for name, field in schema["properties"].items():
        field = {key: value for key, value in field.items() if key != "title"}
        found.append({"name": name, "in": "query", "required": name in required,
                      "description": field.pop("description", ""), "schema": field})
    spec.parameters.extend(found)
    return found


#: The core's sections of the interactive page, listed before the plugins'.
CORE_TAGS = (
    {"name": "accounts", "description": "Registration, login, tokens, password reset and "
                                        "the user list (docs/accounts.md)"},
    {"name": "meta", "description": "This document and the loaded plugins"},
)


class Document(dict):
    """The document being built; ``generated`` names the components made from models,
    ``parameters`` holds the query parameters made from them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.generated = set()
        self.parameters = []


def base_document(registry):
    spec = Document({
        "openapi": "3.1.0",
        "info": {
            "title": "vexpenses API",
            "version": registry.pm.vexpenses_dists["core"][1] or "0",
        },
        # Relative, filled in per request (see openapi_view): never the Host header.
        "servers": [{"url": "/"}],
        # The core's sections, in this order, before any plugin's (see tag_order).
        "tags": [dict(tag) for tag in CORE_TAGS],
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {},
        },
    })
    schema_ref(spec, Failure)
    return spec


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
    spec["tags"] = tag_order(spec)
    return spec


def tag_order(spec):
    """The top-level ``tags``: the core's first, then those plugins declared, then
    any other tag an operation uses, by name.

    Swagger UI shows its sections in this order; without the list it would
    follow the sorted paths, which put ``/api/v1/audit_log`` before
    ``/api/v1/user``.
    """
    declared = {}
    for tag in spec.get("tags", ()):
        declared.setdefault(tag["name"], tag)
    used = set()
    for operations in spec["paths"].values():
        for operation in operations.values():
            used.update(operation.get("tags", ()) if isinstance(operation, dict) else ())
    return [*declared.values(), *({"name": name} for name in sorted(used - set(declared)))]


def hand_written(spec):
    """Where the document holds a schema no model generated, as readable lines.

    Every request and response body must be a ``$ref`` to a component, every
    component must come from a model (:func:`schema_ref`), and every query
    parameter too (:func:`parameters`).
    """
    found = [f"component {name}" for name in spec["components"]["schemas"]
             if name not in spec.generated]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            bodies = [("request", operation.get("requestBody") or {})]
            bodies += [(status, answer) for status, answer in
                       operation.get("responses", {}).items()]
            found += [f"{method.upper()} {path} query {param.get('name')}"
                      for param in operation.get("parameters", ())
                      if param.get("in") == "query" and param not in spec.parameters]
            for where, body in bodies:
                for media_type, content in body.get("content", {}).items():
                    ref = content.get("schema", {}).get("$ref", "")
                    name = ref.removeprefix(REF.format(model=""))
                    if ref == name or name not in spec.generated:
                        found.append(f"{method.upper()} {path} {where} {media_type}")
    return found


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
