"""GET /api/v1/log and GET /api/v1/log/{id}, as docs/audit_log.md's "Reading the log" says.

Read-only: no route updates or deletes a row.
"""

from vexpenses_core.api import NotFound, success
from vexpenses_core.paginator import Paginator
from vexpenses_core.schemas import query_of

from .schemas import ID, LogQuery
from .services import AuditLogService, LogFilters, log_detail, log_dict


def list_logs(request):
    # A query string that is not UTF-8 is the core's 422 (api.bad_encoding_view).
    query = query_of(request, LogQuery)
    filters = LogFilters.of(query)
    page = query.page
    service = AuditLogService(request)
    rows, total = service.page(page, filters)
    users = service.users_for(rows)
    items = [log_dict(row, users.get(row.user_id)) for row in rows]
    paginator = Paginator(request, items, total, page, filters=filters.query)
    return success(request, "Logs recuperados com sucesso", paginator.to_dict())


def get_log(request):
    raw = request.matchdict["id"]
    service = AuditLogService(request)
    row = service.get(int(raw)) if ID.match(raw) else None
    if row is None:  # unknown, or not this user's to see: the same answer
        raise NotFound()
    user = service.users_for([row]).get(row.user_id)
    return success(request, "Log recuperado com sucesso", log_detail(row, user))


def includeme(config):
    config.add_route("audit_log.logs", "/api/v1/log")
    config.add_route("audit_log.logs_slash", "/api/v1/log/")
    config.add_route("audit_log.log", "/api/v1/log/{id}")
    for route in ("audit_log.logs", "audit_log.logs_slash"):
        config.add_view(list_logs, route_name=route, request_method="GET",
                        permission="authenticated", renderer="json")
    config.add_view(get_log, route_name="audit_log.log", request_method="GET",
                    permission="authenticated", renderer="json")
