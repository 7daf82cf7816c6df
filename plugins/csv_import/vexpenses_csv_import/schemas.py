"""The import's bodies, declared once: the OpenAPI document is generated from them."""

import datetime
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, RootModel, WithJsonSchema

from vexpenses_core.schemas import Body, Reply, invalid

FALSE_WORDS = ("0", "false", "no", "off")


def _file(value):
    if value is None or value == "":
        raise invalid("required")
    if not hasattr(value, "file"):  # a text field, not a file part
        raise invalid("file")
    return value


def _yes(value):
    return str(value).strip().lower() not in FALSE_WORDS


class Upload(Body):
    """A multipart form: the CSV file and whether to invite the imported users."""

    file: Annotated[Any, BeforeValidator(_file),
                    WithJsonSchema({"type": "string", "format": "binary"})]
    # Any text: every part of a form is text, and only a few words mean no.
    send_invitations: Annotated[bool, BeforeValidator(_yes), WithJsonSchema(
        {"description": '"0", "false", "no" or "off" sends none'})] = True


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
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    send_invitations: bool = None
    size: int = Field(None, description="bytes")
    sha256: str = None
    error_summary: dict[str, int] | None = Field(
        None, description="when finished: rejected rows by reason")
    error_rows: int = Field(None, description="rows the error report lists, at most "
                                              "vexpenses.csv_import.max_error_rows")
    file_removed_at: datetime.datetime | None = None
    total: int = None
    processed: int = None
    imported: int = None
    rejected: int = None
    duplicates: int = None


class ErrorReport(RootModel[str]):
    """The rejected rows as CSV: row, original fields, reasons."""
