"""Every body in the OpenAPI document is generated from the model that checks it.

The rule (vexpenses_core.openapi.hand_written): each request and response
body is a ``$ref`` to a component, and each component was generated from a
pydantic model, in the core and in every plugin.
"""

from typing import Annotated

import pytest
from pydantic import BeforeValidator

from vexpenses_core.accounts.schemas import Register, UserList
from vexpenses_core.api import ValidationError
from vexpenses_core.openapi import (
    Document,
    envelope,
    hand_written,
    parameters,
    request_body,
    schema_ref,
)
from vexpenses_core.plugins import installed_plugins
from vexpenses_core.schemas import Body, Reply, invalid, validate
from vexpenses_core.settings import ConfigurationError

PLUGINS = ("hello", "csv_import", "audit_log", "mailer")


@pytest.fixture
def every_plugin_app(make_testapp, redis_url, tmp_path):
    enabled = " ".join(name for name in PLUGINS if name in installed_plugins())
    app = make_testapp(**{"vexpenses.plugins": enabled, "vexpenses.redis_url": redis_url,
                          "vexpenses.upload_dir": str(tmp_path / "uploads"),
                          "vexpenses.mailer.backend": "console"})
    yield app
    audit_log = getattr(app.app.registry, "audit_log", None)
    if audit_log is not None:
        audit_log.close()


def test_no_schema_of_the_core_or_a_plugin_is_hand_written(every_plugin_app):
    document = every_plugin_app.app.registry.openapi_document
    assert hand_written(document) == []
    paths = every_plugin_app.get("/api/v1/openapi.json").json["paths"]
    assert {"/api/v1/user/register", "/api/v1/user/upload", "/api/v1/log",
            "/api/v1/hello/greetings"} <= set(paths)


class Greeting(Reply):
    text: str


def empty_document():
    return Document({"paths": {}, "components": {"schemas": {}}})


def test_a_body_from_a_model_passes():
    spec = empty_document()
    spec["paths"]["/x"] = {"post": {"requestBody": request_body(spec, Register),
                                    "responses": {"200": envelope(spec, "Hi", Greeting)}}}
    assert hand_written(spec) == []
    assert {"Register", "Greeting", "Hi"} <= set(spec["components"]["schemas"])


def test_a_hand_written_body_fails():
    spec = empty_document()
    inline = {"type": "object", "properties": {"name": {"type": "string"}}}
    spec["paths"]["/x"] = {"post": {
        "requestBody": {"content": {"application/json": {"schema": inline}}},
        "responses": {"200": envelope(spec, "Hi", Greeting)},
    }}
    assert hand_written(spec) == ["POST /x request application/json"]


def test_a_hand_written_component_fails_and_so_does_its_ref():
    spec = empty_document()
    spec["components"]["schemas"]["Mine"] = {"type": "object"}
    mine = {"$ref": "#/components/schemas/Mine"}
    spec["paths"]["/x"] = {"get": {"responses": {
        "200": {"description": "ok", "content": {"application/json": {"schema": mine}}}}}}
    assert hand_written(spec) == ["component Mine", "GET /x 200 application/json"]


def test_query_parameters_from_a_model_pass():
    spec = empty_document()
    spec["paths"]["/x"] = {"get": {"parameters": parameters(spec, UserList),
                                   "responses": {"200": envelope(spec, "Hi", Greeting)}}}
    assert hand_written(spec) == []
    found = {param["name"]: param for param in spec["paths"]["/x"]["get"]["parameters"]}
    assert list(found) == ["page", "name", "email", "cursor"]
    assert found["name"] == {"name": "name", "in": "query", "required": False,
                             "description": "substring",
                             "schema": {"type": "string", "maxLength": 255}}


def test_a_hand_written_query_parameter_fails():
    spec = empty_document()
    mine = {"name": "sort", "in": "query", "schema": {"type": "string"}}
    path = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    spec["paths"]["/x/{id}"] = {"get": {
        "parameters": [*parameters(spec, UserList), mine, path],
        "responses": {"200": envelope(spec, "Hi", Greeting)}}}
    assert hand_written(spec) == ["GET /x/{id} query sort"]


def test_two_models_with_one_name_fail():
    spec = empty_document()
    schema_ref(spec, Greeting)

    class Greeting2(Reply):  # noqa: N801
        other: int

    Greeting2.__name__ = "Greeting"
    with pytest.raises(ConfigurationError, match="Greeting"):
        schema_ref(spec, Greeting2)


# -- the messages a model renders ---------------------------------------------


def errors(model, data, **context):
    with pytest.raises(ValidationError) as caught:
        validate(model, data, **context)
    return caught.value.errors


def test_messages_come_in_the_models_field_order_confirmation_last_in_its_field():
    found = errors(Register, {"name": "Al", "password": "short", "password_confirmation": "x",
                              "birth_date": "nope"})
    assert found == {
        "name": ["The name field must be at least 3 characters."],
        "email": ["The email field is required."],
        "password": ["The password field must be at least 8 characters.",
                     "The password field confirmation does not match."],
        "birth_date": ["The birth date field must be a valid date."],
    }
    only_confirmation = errors(Register, {"password": "long enough", "birth_date": "x"})
    assert list(only_confirmation) == ["name", "email", "password", "birth_date"]


def test_a_confirmation_is_required_by_the_schema_and_not_checked_alone():
    schema = Register.model_json_schema()
    assert "password_confirmation" in schema["required"]
    assert "default" not in schema["properties"]["password_confirmation"]
    # A password that is not a string is reported as such, not as unconfirmed.
    assert errors(Register, {"password": 12345678})["password"] == [
        "The password field must be a string."]


def test_a_plugins_own_rule_is_rendered_by_its_kind():
    def odd(value):
        if value % 2 == 0:
            raise invalid("odd")
        return value

    class Numbers(Body):
        some_number: Annotated[int, BeforeValidator(odd)]

    assert errors(Numbers, {"some_number": 2}) == {
        "some_number": ["The some number field is invalid."]}


def test_self_service_routes_are_published_from_their_models(every_plugin_app):
    paths = every_plugin_app.get("/api/v1/openapi.json").json
    components = paths["components"]["schemas"]
    patch = paths["paths"]["/api/v1/user/me"]["patch"]
    ref = patch["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    profile = components[ref.rsplit("/", 1)[-1]]
    assert set(profile["properties"]) == {"name", "birth_date"}
    assert profile["additionalProperties"] is False and profile["minProperties"] == 1
    assert "required" not in profile or profile["required"] == []
    assert {"200", "401", "422"} <= set(patch["responses"])
    post = paths["paths"]["/api/v1/user/me/password"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    change = components[ref.rsplit("/", 1)[-1]]
    assert change["required"] == ["current_password", "password", "password_confirmation"]
    assert {"200", "401", "422", "429"} <= set(post["responses"])
