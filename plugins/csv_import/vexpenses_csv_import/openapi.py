"""The plugin's paths in the OpenAPI document."""

from vexpenses_core.openapi import envelope, error_response, limited_response

from .services import UPLOAD_MESSAGE

TAGS = ["csv import"]
ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
SECURITY = [{"bearer": []}]
COUNTS = {name: {"type": "integer"}
          for name in ("total", "processed", "imported", "rejected", "duplicates")}
IMPORT = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string", "description": "the stored file name"},
        "original_name": {"type": "string", "description": "the client's file name"},
        "path": {"type": "string", "description": "the storage-relative path"},
        "status": {"type": "integer", "enum": [0, 1, 2, 3],
                   "description": "0 pending, 1 finished, 2 finished with errors or failed, "
                                  "3 in progress"},
        "error": {"type": ["string", "null"]},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "eta_seconds": {"type": ["integer", "null"]},
        "error_report": {"type": ["string", "null"],
                         "description": "path of the error report, when rows were rejected"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "deleted_at": {"type": ["string", "null"], "format": "date-time"},
        **COUNTS,
    },
}


def add_paths(spec):
    spec["components"]["schemas"]["Import"] = IMPORT
    ref = {"$ref": "#/components/schemas/Import"}
    # docs/csv_import.md: the status answer repeats the upload's message.
    found = envelope(UPLOAD_MESSAGE, ref)
    unauthenticated = error_response("Missing or invalid token")
    unknown = error_response("Unknown import, or not yours")
    spec["paths"]["/api/v1/user/upload"] = {
        "post": {
            "summary": "Upload a CSV of users to import in the background",
            "tags": TAGS,
            "security": SECURITY,
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    # Any text: every part of a form is text, and only a few words
                    # ("0", "false", "no", "off") mean no.
                    "send_invitations": {"description": '"0", "false", "no" or "off" '
                                                        "sends none"},
                },
            }}}},
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
            "responses": {"200": envelope("Import deleted", ref), "401": unauthenticated,
                          "404": unknown},
        },
    }
    spec["paths"]["/api/v1/user/import-status/{id}/errors"] = {
        "get": {
            "summary": "The rejected rows as CSV: row, original fields, reasons",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": {"description": "The error report",
                                  "content": {"text/csv": {"schema": {"type": "string"}}}},
                          "401": unauthenticated, "404": unknown},
        }
    }
