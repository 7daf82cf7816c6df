"""GET /api/v1/mailer/deliveries: what was sent and what failed, for admins."""

from vexpenses_core.api import success
from vexpenses_core.paginator import PER_PAGE, Paginator, offset_for
from vexpenses_core.schemas import query_of

from .schemas import DeliveryList
from .services import deliveries_page, delivery_dict


def list_deliveries(request):
    query = query_of(request, DeliveryList)
    rows, total = deliveries_page(request.dbsession, offset_for(query.page), PER_PAGE,
                                  query.status, query.kind)
    paginator = Paginator(request, [delivery_dict(row) for row in rows], total, query.page,
                          filters={"status": query.status, "kind": query.kind})
    return success(request, "Mail deliveries", paginator.to_dict())


def includeme(config):
    config.add_route("mailer.deliveries", "/api/v1/mailer/deliveries")
    config.add_view(list_deliveries, route_name="mailer.deliveries", request_method="GET",
                    permission="admin", renderer="json")
