"""The audit log's answers, declared once: the OpenAPI document is generated from them."""

import datetime
import re
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo

from vexpenses_core.paginator import PageQuery
from vexpenses_core.schemas import Reply, filter_text, invalid

# 18 digits: always below BIGINT's limit, so no id can overflow the query.
ID = re.compile(r"^[0-9]{1,18}$")
# An empty or blank filter is no filter, as in Laravel's filled().
BLANK = {"type": "string", "pattern": "^\\s*$"}
# A date (YYYY-MM-DD) or an ISO 8601 date and time, as :func:`moment` reads it.
MOMENT = {"anyOf": [{"type": "string", "maxLength": 64, "format": "date"},
                    {"type": "string", "maxLength": 64, "format": "date-time"}, BLANK]}


def moment(value, end=False):
    """The UTC instant a filter means; ``end``: a date runs to its end (None: no bound).

    Raises ValueError or OverflowError for a value that is no date or time.
    """
    if len(value) == 10:
        day = datetime.date.fromisoformat(value)
        start = datetime.datetime.combine(day, datetime.time(), tzinfo=datetime.UTC)
        step = datetime.timedelta(days=1)
    else:
        start = datetime.datetime.fromisoformat(value.replace(" ", "T", 1))
        if start.tzinfo is None:
            start = start.replace(tzinfo=datetime.UTC)
        start = start.astimezone(datetime.UTC)
        step = datetime.timedelta(microseconds=1)
    if not end:
        return start
    try:
        return start + step
    except OverflowError:  # the end of the calendar: no upper bound
        return None


def _whole_number(value):
    if value is not None and not ID.match(value):
        raise invalid("whole_number")
    return value


def _a_moment(value):
    if value is not None:
        try:
            moment(value)
        except (ValueError, OverflowError):
            raise invalid("date_or_time") from None
    return value


def _after_from(value, info: ValidationInfo):
    since = info.data.get("from_")
    if value is not None and since is not None:
        until = moment(value, end=True)
        if until is not None and until <= moment(since):
            raise invalid("after_or_equal", other="from")
    return value


Moment = Annotated[filter_text(64, trim_first=True, json_schema=MOMENT),
                   AfterValidator(_a_moment)]


class LogQuery(PageQuery):
    """The list's filters, each kept as sent (trimmed) for the page URLs."""

    action: Annotated[filter_text(255, trim_first=True),
                      Field(description="substring of the action label")] = None
    request_id: Annotated[filter_text(128, trim_first=True), Field(
        description="only the rows of this request (and of its tasks)")] = None
    user_id: Annotated[
        filter_text(32, trim_first=True, json_schema={"anyOf": [
            {"type": "integer", "minimum": 0, "maximum": 10**18 - 1}, BLANK]}),
        AfterValidator(_whole_number), Field(description="only this user's rows")] = None
    from_: Annotated[Moment, Field(
        alias="from",
        description="created at or after: YYYY-MM-DD or ISO 8601 date and time")] = None
    to: Annotated[Moment, AfterValidator(_after_from), Field(
        description="created at or before (a date includes its whole day)")] = None


class AuditLogUser(Reply):
    id: int = None
    name: str = None
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})] = None
    birth_date: datetime.date | None = None
    created_at: datetime.datetime = None
    updated_at: datetime.datetime = None


ERASED = "; null when the row's details were erased (the LGPD right to erasure)"


class AuditLogEntry(Reply):
    id: int
    action: str = Field(examples=["User login"])
    description: str | None = Field(description="what happened, in a sentence" + ERASED)
    user_id: int | None = Field(description="null for actions done by background jobs")
    created_at: datetime.datetime
    updated_at: datetime.datetime
    user: AuditLogUser | None


class AuditLogEntryDetail(AuditLogEntry):
    hook: str = Field(None, examples=["vexpenses_user_logged_in"])
    ip_address: str | None = Field(None, description="null for jobs" + ERASED)
    user_agent: str | None = Field(None, description="null for jobs" + ERASED)
    request_id: str | None = None
    payload: dict | None = Field(None, description="the hook's arguments, secrets removed"
                                 + ERASED)
    erased_at: datetime.datetime | None = Field(
        None, description="when the row's details were erased, or null")
