"""The import's bodies, declared once: the OpenAPI document is generated from them."""

import datetime
from typing import Any, Literal

from pydantic import Field, RootModel

from vexpenses_core.schemas import Reply


class Upload(Reply):
    """A multipart form: the CSV file and whether to invite the imported users."""

    file: bytes = Field(json_schema_extra={"format": "binary"})
    # Any text: every part of a form is text, and only a few words
    # ("0", "false", "no", "off") mean no.
    send_invitations: Any = Field(None, description='"0", "false", "no" or "off" sends none')


class Import(Reply):
    id: int = None
    name: str = Field(None, description="the stored file name")
    original_name: str = Field(None, description="the client's file name")
    path: str = Field(None, description="the storage-relative path")
    status: Literal[0, 1, 2, 3] = Field(
        None, description="0 pending, 1 finished, 2 finished with errors or failed, "
                          "3 in progress")
    error: str | None = None
    progress: int = Field(None, ge=0, le=100)
    eta_seconds: int | None = None
    error_report: str | None = Field(
        None, description="path of the error report, when rows were rejected")
    created_at: datetime.datetime = None
    updated_at: datetime.datetime = None
    deleted_at: datetime.datetime | None = None
    total: int = None
    processed: int = None
    imported: int = None
    rejected: int = None
    duplicates: int = None


class ErrorReport(RootModel[str]):
    """The rejected rows as CSV: row, original fields, reasons."""
