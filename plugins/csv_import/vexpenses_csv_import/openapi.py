"""The plugin's paths in the OpenAPI document."""

from vexpenses_core.openapi import (
    envelope,
    error_response,
    limited_response,
    request_body,
    response,
)

from .schemas import ErrorReport, Import, Upload
from .services import UPLOAD_MESSAGE

TAGS = ["csv import"]
ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
SECURITY = [{"bearer": []}]

def add_paths(spec):
    # docs/csv_import.md: the status answer repeats the upload's message.
    found = envelope(spec, UPLOAD_MESSAGE, Import)
    unauthenticated = error_response("Missing or invalid token")
    unknown = error_response("Unknown import, or not yours")
    spec["paths"]["/api/v1/user/upload"] = {
        "post": {
            "summary": "Upload a CSV of users to import in the background",
            "tags": TAGS,
            "security": SECURITY,
            "requestBody": request_body(spec, Upload, "multipart/form-data"),
            "responses": {
                "201": found,
                "401": unauthenticated,
                "413": error_response("The file is larger than the limit"),
                "422": error_response("No file, or not a text file"),
                "429": limited_response("Over the uploads or rows quota; see Retry-After"),
            },
        }
    }
    spec["paths"]["/api/v1/user/import-status/{id}"] = {
        "get": {
            "summary": "An import's status, counts and progress (uploader or admin)",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": found, "401": unauthenticated, "404": unknown},
        },
        "delete": {
            "summary": "Soft-delete an import (uploader or admin)",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": envelope(spec, "Import deleted", Import),
                          "401": unauthenticated,
                          "404": unknown},
        },
    }
    spec["paths"]["/api/v1/user/import-status/{id}/errors"] = {
        "get": {
            "summary": "The rejected rows as CSV: row, original fields, reasons",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": response(spec, "The error report", ErrorReport, "text/csv"),
                          "401": unauthenticated, "404": unknown},
        }
    }
