"""The greeting bodies, declared once: they check requests and make the OpenAPI schemas."""

import datetime
from typing import Annotated

from pydantic import BeforeValidator

from vexpenses_core import Body, Reply, invalid


def _name(value):
    if not isinstance(value, str) or not value.strip():
        raise invalid("required")  # "The name field is required."
    return value.strip()[:100]


class HelloNewGreeting(Body):
    name: Annotated[str, BeforeValidator(_name)]


class HelloGreeting(Reply):
    id: int
    name: str
    message: str | None
    created_at: datetime.datetime
    greeted_at: datetime.datetime | None
