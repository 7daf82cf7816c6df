"""GET /api/v1/mailer/deliveries: what was sent and what failed, for admins."""

from vexpenses_core.api import ValidationError, success
from vexpenses_core.paginator import PER_PAGE, Paginator, offset_for, page_number

from .messages import KINDS
from .models import FAILED, SENT
from .services import deliveries_page

STATUSES = (SENT, FAILED)


def _choice(request, name, allowed):
    value = request.GET.get(name, "").strip()
    if value and value not in allowed:
        raise ValidationError({name: [f"The {name} must be one of: {', '.join(allowed)}."]})
    return value or None


def list_deliveries(request):
    status = _choice(request, "status", STATUSES)
    kind = _choice(request, "kind", KINDS)
    page = page_number(request)
    rows, total = deliveries_page(request.dbsession, offset_for(page), PER_PAGE, status, kind)
    paginator = Paginator(request, [row.to_dict() for row in rows], total, page,
                          filters={"status": status, "kind": kind})
    return success(request, "Mail deliveries", paginator.to_dict())


def includeme(config):
    config.add_route("mailer.deliveries", "/api/v1/mailer/deliveries")
    config.add_view(list_deliveries, route_name="mailer.deliveries", request_method="GET",
                    permission="admin", renderer="json")
