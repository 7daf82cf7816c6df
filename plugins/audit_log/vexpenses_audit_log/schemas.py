"""The audit log's answers, declared once: the OpenAPI document is generated from them."""

import datetime
from typing import Annotated

from pydantic import Field

from vexpenses_core.schemas import Reply


class AuditLogUser(Reply):
    id: int = None
    name: str = None
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})] = None
    birth_date: datetime.date | None = None
    created_at: datetime.datetime = None
    updated_at: datetime.datetime = None


class AuditLogEntry(Reply):
    id: int
    action: str = Field(examples=["User login"])
    description: str
    user_id: int | None = Field(description="null for actions done by background jobs")
    created_at: datetime.datetime
    updated_at: datetime.datetime
    user: AuditLogUser | None


class AuditLogEntryDetail(AuditLogEntry):
    hook: str = Field(None, examples=["vexpenses_user_logged_in"])
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
    payload: dict | None = Field(None, description="the hook's arguments, secrets removed")
