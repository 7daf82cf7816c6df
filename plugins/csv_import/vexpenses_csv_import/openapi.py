"""The plugin's paths in the OpenAPI document."""

from vexpenses_core.openapi import error_response

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
    found = {"description": "Success on store file. We will process in background.",
             "content": {"application/json": {"schema": {
                 "type": "object", "properties": {"status": {"const": True},
                                                  "message": {"type": "string"},
                                                  "data": ref}}}}}
    spec["paths"]["/api/v1/user/upload"] = {
        "post": {
            "summary": "Upload a CSV of users to import in the background",
            "tags": TAGS,
            "security": SECURITY,
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "send_invitations": {"type": "string",
                                         "description": '"0" or "false" sends none'},
                },
            }}}},
            "responses": {
                "201": found,
                "401": error_response("Missing or invalid token"),
                "413": error_response("The file is larger than the limit"),
                "422": error_response("No file, or not a text file"),
            },
        }
    }
    spec["paths"]["/api/v1/user/import-status/{id}"] = {
        "get": {
            "summary": "An import's status, counts and progress (uploader or admin)",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": found, "401": error_response("Missing or invalid token"),
                          "404": error_response("Unknown import, or not yours")},
        },
        "delete": {
            "summary": "Soft-delete an import (uploader or admin)",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": {"description": "Import deleted"},
                          "404": error_response("Unknown import, or not yours")},
        },
    }
    spec["paths"]["/api/v1/user/import-status/{id}/errors"] = {
        "get": {
            "summary": "The rejected rows as CSV: row, original fields, reasons",
            "tags": TAGS, "security": SECURITY, "parameters": ID,
            "responses": {"200": {"description": "The error report",
                                  "content": {"text/csv": {}}},
                          "404": error_response("Unknown import, or not yours")},
        }
    }
