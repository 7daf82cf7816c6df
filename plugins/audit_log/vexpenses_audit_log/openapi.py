"""The audit log's paths in the OpenAPI document."""

from vexpenses_core.openapi import Paginator, envelope, error_response, parameters

from .schemas import AuditLogEntry, AuditLogEntryDetail, LogQuery


def add_paths(spec):
    denied = {
        "401": error_response("Missing or invalid token"),
        "422": error_response("A filter is invalid, or to is before from"),
    }
    spec["paths"]["/api/v1/log"] = {
        "get": {
            "summary": "Audit log, newest first, 10 per page",
            "description": "Admins see every row; other users only their own (rows of "
                           "background jobs, which have no user, are admins' only), unless "
                           "vexpenses.audit_log.visibility = all.",
            "tags": ["audit_log"],
            "security": [{"bearer": []}],
            "parameters": parameters(spec, LogQuery),
            "responses": {
                "200": envelope(spec, "Logs recuperados com sucesso",
                                Paginator[AuditLogEntry]),
                **denied,
            },
        }
    }
    spec["paths"]["/api/v1/log/{id}"] = {
        "get": {
            "summary": "One audit row, with its user",
            "tags": ["audit_log"],
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": True,
                            "schema": {"type": "integer"}}],
            "responses": {
                "200": envelope(spec, "Log recuperado com sucesso", AuditLogEntryDetail),
                "401": error_response("Missing or invalid token"),
                "404": error_response("Unknown id, or a row this user may not see"),
            },
        }
    }
