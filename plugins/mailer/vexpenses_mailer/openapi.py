"""The mailer's path in the OpenAPI document."""

from vexpenses_core.openapi import Paginator, envelope, error_response, parameters

from .schemas import DeliveryList, MailDelivery


def add_paths(spec):
    spec["paths"]["/api/v1/mailer/deliveries"] = {
        "get": {
            "summary": "E-mails sent and failed, newest first (admin)",
            "tags": ["mailer"],
            "security": [{"bearer": []}],
            "parameters": parameters(spec, DeliveryList),
            "responses": {
                "200": envelope(spec, "Mail deliveries", Paginator[MailDelivery]),
                "401": error_response("No valid access token"),
                "403": error_response("Not an admin"),
                "422": error_response("Unknown status or kind"),
            },
        }
    }
