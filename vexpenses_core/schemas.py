"""Request and response bodies, declared once as pydantic models.

One declaration does three jobs: it validates a request, its errors are
rendered as Laravel's messages per field (the contract, docs/accounts.md),
and it generates the OpenAPI component schema (vexpenses_core.openapi), so
the published schema cannot drift from the code.

A request model subclasses :class:`Body`; its fields use annotated types
whose validators raise :func:`invalid` with a type from :data:`MESSAGES`
(or pydantic's own constraints: ``min_length``, ``max_length``), and
:func:`validate` turns the errors into a 422.
"""

import re
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic import ValidationError as PydanticError
from pydantic_core import PydanticCustomError

from .api import ValidationError

# Laravel's wording for each error type, pydantic's own types included.
MESSAGES = {
    "missing": "The {label} field is required.",
    "required": "The {label} field is required.",
    "string_type": "The {label} field must be a string.",
    "null_characters": "The {label} field must not contain null characters.",
    "unsafe_text": "The {label} field must not contain control, invisible or text-direction "
                   "characters.",
    "string_too_short": "The {label} field must be at least {min_length} characters.",
    "string_too_long": "The {label} field must not be greater than {max_length} characters.",
    "email": "The {label} field must be a valid email address.",
    "date": "The {label} field must be a valid date.",
    "date_after_today": "The {label} field must be a date before or equal to today.",
    "boolean": "The {label} field must be true or false.",
    "confirmed": "The {label} field confirmation does not match.",
    "file": "The {label} field must be a file.",
    # A query's filters ({name} is the parameter as sent).
    "filter_too_long": "The {name} filter must not be greater than {max_length} characters.",
    "whole_number": "The {label} filter must be a whole number.",
    "date_or_time": "The {name} filter must be a date (YYYY-MM-DD) or an ISO 8601 date and time.",
    "after_or_equal": "The {name} filter must be a time after or equal to {other}.",
    "one_of": "The {name} must be one of: {allowed}.",
    "invalid_value": "The {name} is invalid.",
}
FALLBACK = "The {label} field is invalid."

# Characters no name needs and an attacker loves: C0 and C1 controls (tab
# and newline included), lone surrogates, line and paragraph separators,
# bidirectional controls, and invisible format characters. ZWJ and ZWNJ
# stay: Persian, Indic scripts and emoji need them.
_UNSAFE_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb\ud800-\udfff]"
)


def has_unsafe_text(value):
    """True when ``value`` holds a control, bidi or invisible character."""
    return _UNSAFE_TEXT.search(value) is not None


def label(field):
    return field.replace("_", " ")


def invalid(kind, **context):
    """The error a field validator raises; ``kind`` is a key of :data:`MESSAGES`."""
    return PydanticCustomError(kind, kind, context)


def too_long(maximum):
    """pydantic's own error for a string over ``maximum`` characters."""
    return invalid("string_too_long", max_length=maximum)


# -- building blocks: each raises the first error of its field ---------------


def string(value):
    """A required string: not missing or blank, a string, without NUL."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise invalid("required")
    if not isinstance(value, str):
        raise invalid("string_type")
    if "\x00" in value:
        raise invalid("null_characters")
    return value


def text(value):
    """A free-text field: no controls, bidi overrides or invisible characters."""
    value = string(value)
    if has_unsafe_text(value):
        raise invalid("unsafe_text")
    return value


# The string checks alone, before a type's own constraints (a password's lengths).
Required = BeforeValidator(string)

# What the schema says and the model leaves alone: the view or service
# answers for it (a refresh token is a 401, not a 422).
Unchecked = Annotated[Any, WithJsonSchema({"type": "string"})]


class _Confirmation:
    """Marks ``<field>_confirmation``: it must equal ``<field>`` (Laravel's ``confirmed``)."""


# Checked with its field, and reported under it; required in the schema.
Confirmation = Annotated[Any, WithJsonSchema({"type": "string"}), _Confirmation()]


class _SchemaRequired:
    """Marks a field the schema requires though the model gives it a default."""


SCHEMA_REQUIRED = _SchemaRequired()


def _marked(info, kind):
    return any(isinstance(item, kind) for item in info.metadata)


def _no_null_defaults(schema, model):
    """A default of None only means "may be absent": it would read as a value."""
    for prop in schema.get("properties", {}).values():
        if prop.get("default", ...) is None:
            del prop["default"]


def _schema_extra(schema, model):
    """Required in the schema: confirmations and marked fields."""
    _no_null_defaults(schema, model)
    required = schema.setdefault("required", [])
    for name, info in model.model_fields.items():
        if name not in required and (_marked(info, _Confirmation)
                                      or _marked(info, _SchemaRequired)):
            required.append(name)
    order = list(model.model_fields)
    required.sort(key=order.index)


class Body(BaseModel):
    """A request body. Unknown fields are ignored, as Laravel does."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_schema_extra)
    _confirmations: ClassVar[tuple] = ()  # the fields that have a <field>_confirmation

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs):
        super().__pydantic_init_subclass__(**kwargs)
        cls._confirmations = tuple(
            name.removesuffix("_confirmation") for name, info in cls.model_fields.items()
            if _marked(info, _Confirmation))

    @model_validator(mode="wrap")
    @classmethod
    def _confirmed(cls, data, handler):
        """Laravel's ``confirmed``: reported under the field, after its own error.

        Around the whole model, not in a field validator, because a password
        that is too short is still reported unconfirmed, as before.
        """
        if not cls._confirmations:
            return handler(data)
        unconfirmed = [name for name in cls._confirmations if _mismatch(data, name)]
        if not unconfirmed:
            return handler(data)
        errors = []
        try:
            handler(data)
        except PydanticError as exc:
            errors = [{"type": PydanticCustomError(e["type"], e["type"], e.get("ctx")),
                       "loc": e["loc"], "input": e["input"]} for e in exc.errors()]
        errors += [{"type": invalid("confirmed"), "loc": (name,), "input": data.get(name)}
                   for name in unconfirmed]
        raise PydanticError.from_exception_data(cls.__name__, errors)

    @classmethod
    def subset(cls, name, *fields):
        """A model of some of this one's fields, with the same rules."""
        return create_model(name, __base__=Body, **{
            field: (cls.model_fields[field].annotation, cls.model_fields[field])
            for field in fields})


class Reply(BaseModel):
    """A response body, or a part of one: a field with a default may be absent."""

    model_config = ConfigDict(json_schema_extra=_no_null_defaults)


class Query(BaseModel):
    """A route's query string: every parameter optional, unknown ones ignored.

    Parameters are named as sent (an alias for ``from``); the OpenAPI
    parameters are generated from the model (vexpenses_core.openapi.parameters).
    """

    model_config = ConfigDict(extra="ignore", json_schema_extra=_no_null_defaults)


def query_of(request, model):
    """The request's query string as a ``model``, or a 422 per parameter.

    A repeated parameter counts once, its last value, as ``request.GET.get``.
    """
    return validate(model, dict(request.GET))


def filter_text(maximum, *, trim_first=False, json_schema=None):
    """A text filter: blank is no filter (None), else trimmed, at most ``maximum`` characters.

    The length is that of the value as sent, or once trimmed (``trim_first``).
    """
    def check(value):
        if not isinstance(value, str) or not value.strip():
            return None
        trimmed = value.strip()
        if len(trimmed if trim_first else value) > maximum:
            raise invalid("filter_too_long", max_length=maximum)
        return trimmed

    return Annotated[str | None, BeforeValidator(check), WithJsonSchema(
        json_schema or {"type": "string", "maxLength": maximum})]


def choice(allowed):
    """One of ``allowed``, trimmed; empty is no filter (None)."""
    def check(value):
        value = value.strip() if isinstance(value, str) else ""
        if value and value not in allowed:
            raise invalid("one_of", allowed=", ".join(allowed))
        return value or None

    return Annotated[str | None, BeforeValidator(check),
                     WithJsonSchema({"enum": [*allowed, ""]})]


class PluginInfo(Reply):
    """A loaded plugin, as GET /api/v1/plugins lists it (admins only)."""

    name: str
    project: str | None = Field(description="its distribution; null when unknown")
    version: str | None
    hooks: list[str] = Field(description="the hooks it implements, sorted")


def _mismatch(data, name):
    """The field is a string (its own checks passed) and its confirmation differs."""
    if not isinstance(data, dict):
        return False
    value = data.get(name)
    try:
        string(value)
    except PydanticCustomError:
        return False
    return data.get(f"{name}_confirmation") != value


def errors_of(exc, model):
    """pydantic's errors as ``{field: [Laravel message, ...]}``, fields in model order."""
    found = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "body"
        template = MESSAGES.get(error["type"], FALLBACK)
        found.setdefault(field, []).append(
            template.format(label=label(field), name=field, **(error.get("ctx") or {})))
    order = [info.alias or name for name, info in model.model_fields.items()]
    return dict(sorted(found.items(),
                       key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def validate(model, data, **context):
    """``data`` as a ``model``, or a 422 with Laravel's message per field.

    ``context`` reaches the field validators (``today`` for a birth date).
    """
    try:
        return model.model_validate(data, context=context)
    except PydanticError as exc:
        raise ValidationError(errors_of(exc, model)) from None
