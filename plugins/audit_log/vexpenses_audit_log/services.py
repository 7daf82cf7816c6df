"""Reading the audit log: filters, visibility, pages and single rows.

Rows are only ever written by the chain writer (:mod:`.chain`); nothing here
changes them. The description, addresses and arguments come from the side
table, ``audit_log_details`` (joined with each row), and are null once erased.
"""

import dataclasses
import datetime
import json

from sqlalchemy import func, select

from vexpenses_core.models import User
from vexpenses_core.paginator import PER_PAGE, offset_for

from . import schemas
from .models import AuditLogEntry
from .schemas import moment


@dataclasses.dataclass
class LogFilters:
    action: str | None = None
    user_id: int | None = None
    since: datetime.datetime | None = None  # inclusive
    before: datetime.datetime | None = None  # exclusive
    request_id: str | None = None
    #: the filters as given, kept in the paginator's URLs
    query: dict = dataclasses.field(default_factory=dict)

    @classmethod
    def of(cls, query):
        """The filters a valid :class:`~.schemas.LogQuery` asks for."""
        return cls(
            action=query.action, request_id=query.request_id,
            user_id=None if query.user_id is None else int(query.user_id),
            since=None if query.from_ is None else moment(query.from_),
            before=None if query.to is None else moment(query.to, end=True),
            query=query.model_dump(by_alias=True, exclude={"page"}, exclude_none=True))


class AuditLogService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.settings = request.registry.audit_log_settings

    def _conditions(self, filters):
        conditions = []
        user = self.request.identity
        # Admins see everything; others their own rows only, so job rows
        # (no user) are admin-only. visibility = all is the original app's rule.
        if self.settings.visibility != "all" and not user.is_admin:
            conditions.append(AuditLogEntry.user_id == user.id)
        if filters.action:
            conditions.append(AuditLogEntry.action.contains(filters.action, autoescape=True))
        if filters.user_id is not None:
            conditions.append(AuditLogEntry.user_id == filters.user_id)
        if filters.since is not None:
            conditions.append(AuditLogEntry.created_at >= filters.since)
        if filters.before is not None:
            conditions.append(AuditLogEntry.created_at < filters.before)
        if filters.request_id:
            conditions.append(AuditLogEntry.request_id == filters.request_id)
        return conditions

    def page(self, page, filters):
        """One page of visible rows, newest first, and how many there are in all."""
        conditions = self._conditions(filters)
        total = self.db.scalar(
            select(func.count()).select_from(AuditLogEntry).where(*conditions)
        )
        if offset_for(page) >= total:
            return [], total
        rows = self.db.scalars(
            select(AuditLogEntry).where(*conditions).order_by(AuditLogEntry.id.desc())
            .offset(offset_for(page)).limit(PER_PAGE)
        ).all()
        return rows, total

    def get(self, log_id):
        """The row, or None when it does not exist or this user may not see it."""
        return self.db.scalar(
            select(AuditLogEntry).where(AuditLogEntry.id == log_id,
                                        *self._conditions(LogFilters()))
        )

    def users_for(self, rows):
        ids = {row.user_id for row in rows if row.user_id is not None}
        if not ids:
            return {}
        return {user.id: user for user in self.db.scalars(select(User).where(User.id.in_(ids)))}


def _entry(row, user):
    """The fields of :class:`~.schemas.AuditLogEntry`: exactly the original app's."""
    return {
        "id": row.id,
        "action": row.action,
        "description": row.description,
        "user_id": row.user_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "user": None if user is None else schemas.AuditLogUser.model_validate(
            user, from_attributes=True),
    }


def log_dict(row, user):
    """A row as the API lists it, dumped from its published model."""
    return schemas.AuditLogEntry(**_entry(row, user)).model_dump()


def log_detail(row, user):
    """One row, with what the list leaves out: where it came from and the arguments."""
    try:
        payload = json.loads(row.payload)
    except (TypeError, ValueError):  # erased (None), or not JSON
        payload = None
    return schemas.AuditLogEntryDetail(
        **_entry(row, user), hook=row.hook, ip_address=row.ip_address,
        user_agent=row.user_agent, request_id=row.request_id, payload=payload,
        erased_at=row.erased_at).model_dump()
