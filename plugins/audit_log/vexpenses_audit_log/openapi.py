"""The audit log's paths in the OpenAPI document."""

from vexpenses_core.openapi import PAGE, Paginator, envelope, error_response

from .schemas import AuditLogEntry, AuditLogEntryDetail

# An empty or blank filter is no filter, as in Laravel's filled().
BLANK = {"type": "string", "pattern": "^\\s*$"}
# A date (YYYY-MM-DD) or an ISO 8601 date and time, as views._moment reads it.
MOMENT = {"anyOf": [{"type": "string", "maxLength": 64, "format": "date"},
                    {"type": "string", "maxLength": 64, "format": "date-time"}, BLANK]}


def _query(name, description, schema=None):
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


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
            "parameters": [
                PAGE,
                _query("action", "substring of the action label",
                       {"type": "string", "maxLength": 255}),
                _query("user_id", "only this user's rows",
                       {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
                                  BLANK]}),
                _query("from", "created at or after: YYYY-MM-DD or ISO 8601 date and time",
                       MOMENT),
                _query("to", "created at or before (a date includes its whole day)", MOMENT),
                _query("request_id", "only the rows of this request (and of its tasks)",
                       {"type": "string", "maxLength": 128}),
            ],
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
