"""GET /api/v1/log and GET /api/v1/log/{id}, as docs/audit_log.md's "Reading the log" says.

Read-only: no route updates or deletes a row.
"""

import datetime
import re

from vexpenses_core.api import NotFound, ValidationError, success
from vexpenses_core.paginator import Paginator, page_number

from .services import AuditLogService, LogFilters, log_detail, log_dict

# 18 digits: always below BIGINT's limit, so no id can overflow the query.
_ID = re.compile(r"^[0-9]{1,18}$")
DATE_HELP = "a date (YYYY-MM-DD) or an ISO 8601 date and time"


def list_logs(request):
    try:
        params = request.GET
    except UnicodeDecodeError:
        raise ValidationError({"query": ["The query string is not valid UTF-8."]}) from None
    filters = parse_filters(params)
    page = page_number(request)
    service = AuditLogService(request)
    rows, total = service.page(page, filters)
    users = service.users_for(rows)
    items = [log_dict(row, users.get(row.user_id)) for row in rows]
    paginator = Paginator(request, items, total, page, filters=filters.query)
    return success(request, "Logs recuperados com sucesso", paginator.to_dict())


def get_log(request):
    raw = request.matchdict["id"]
    service = AuditLogService(request)
    row = service.get(int(raw)) if _ID.match(raw) else None
    if row is None:  # unknown, or not this user's to see: the same answer
        raise NotFound()
    user = service.users_for([row]).get(row.user_id)
    return success(request, "Log recuperado com sucesso", log_detail(row, user))


def parse_filters(params):
    """The query's filters, or a 422 naming each bad one."""
    errors = {}
    filters = LogFilters()

    def text(name, limit):
        value = params.get(name)
        if value is None or not value.strip():
            return None
        value = value.strip()
        if len(value) > limit:
            errors[name] = [f"The {name} filter must not be greater than {limit} characters."]
            return None
        filters.query[name] = value
        return value

    filters.action = text("action", 255)
    filters.request_id = text("request_id", 128)
    user_id = text("user_id", 32)
    if user_id is not None:
        if _ID.match(user_id):
            filters.user_id = int(user_id)
        else:
            errors["user_id"] = ["The user id filter must be a whole number."]
    since = text("from", 64)
    if since is not None:
        filters.since = _moment(since, errors, "from", end=False)
    until = text("to", 64)
    if until is not None:
        filters.before = _moment(until, errors, "to", end=True)
    if filters.since and filters.before and filters.before <= filters.since:
        errors["to"] = ["The to filter must be a time after or equal to from."]
    if errors:
        raise ValidationError(errors)
    return filters


def _moment(value, errors, name, end):
    """The UTC instant a filter means. ``to`` is inclusive: a date runs to its end."""
    try:
        if len(value) == 10:
            day = datetime.date.fromisoformat(value)
            moment = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
            step = datetime.timedelta(days=1)
        else:
            moment = datetime.datetime.fromisoformat(value.replace(" ", "T", 1))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            moment = moment.astimezone(datetime.UTC)
            step = datetime.timedelta(microseconds=1)
    except (ValueError, OverflowError):
        errors[name] = [f"The {name} filter must be {DATE_HELP}."]
        return None
    if not end:
        return moment
    try:
        return moment + step
    except OverflowError:  # the end of the calendar: no upper bound
        return None


def includeme(config):
    config.add_route("audit_log.logs", "/api/v1/log")
    config.add_route("audit_log.logs_slash", "/api/v1/log/")
    config.add_route("audit_log.log", "/api/v1/log/{id}")
    for route in ("audit_log.logs", "audit_log.logs_slash"):
        config.add_view(list_logs, route_name=route, request_method="GET",
                        permission="authenticated", renderer="json")
    config.add_view(get_log, route_name="audit_log.log", request_method="GET",
                    permission="authenticated", renderer="json")
