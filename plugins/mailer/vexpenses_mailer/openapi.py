from vexpenses_core.openapi import PAGE, envelope, error_response, paginator

from .messages import KINDS
from .views import STATUSES


def add_paths(spec):
    spec["components"]["schemas"]["MailDelivery"] = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "kind": {"enum": list(KINDS)},
            "user_id": {"type": ["integer", "null"]},
            "recipient": {"type": "string"},
            "subject": {"type": "string"},
            "status": {"enum": list(STATUSES)},
            "attempts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
            "message_id": {"type": ["string", "null"]},
            "created_at": {"type": "string", "format": "date-time"},
            "sent_at": {"type": ["string", "null"], "format": "date-time"},
        },
    }
    spec["paths"]["/api/v1/mailer/deliveries"] = {
        "get": {
            "summary": "E-mails sent and failed, newest first (admin)",
            "tags": ["mailer"],
            "security": [{"bearer": []}],
            "parameters": [
                # Empty is no filter.
                {"name": "status", "in": "query", "schema": {"enum": [*STATUSES, ""]}},
                {"name": "kind", "in": "query", "schema": {"enum": [*KINDS, ""]}},
                PAGE,
            ],
            "responses": {
                "200": envelope("Mail deliveries",
                                paginator({"$ref": "#/components/schemas/MailDelivery"})),
                "401": error_response("No valid access token"),
                "403": error_response("Not an admin"),
                "422": error_response("Unknown status or kind"),
            },
        }
    }
