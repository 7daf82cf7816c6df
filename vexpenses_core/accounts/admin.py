"""Admins managing users: look one up, change, disable, enable, end their sessions.

The last-admin guard lives here; deletion (``deletion.py``) applies it too.
"""

from sqlalchemy import select

from ..api import NotFound, ValidationError
from ..db import utcnow
from ..models import User
from .auth import AuthService
from .users import UserService

# Ids are BIGINT: a larger number would overflow the query, not find nothing.
MAX_ID = 2**63 - 1

LAST_ADMIN = {
    "disabled": "You cannot disable the last enabled admin; make another user an admin first.",
    "is_admin": "You cannot demote the last enabled admin; make another user an admin first.",
    "user": "You cannot delete the last enabled admin; make another user an admin first.",
}


def keep_an_admin(request, user, field):
    """A 422 on ``field`` when ``user`` is the only enabled admin.

    Call it before taking ``user``'s admin power away (demote, disable,
    delete). It locks the rows of every enabled admin, ``user`` included,
    until the commit (SELECT ... FOR UPDATE), so that two admins demoting
    each other at once cannot both pass: the second reads after the first
    commits. SQLite needs no lock: its transactions begin IMMEDIATE, one
    writer at a time.
    """
    if not user.is_admin:
        return  # as loaded by this request: a promotion since is not its business
    admins = request.dbsession.scalars(
        select(User.id)
        .where(User.is_admin.is_(True), User.disabled_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    ).all()
    if admins == [user.id]:
        raise ValidationError({field: [LAST_ADMIN[field]]})


class AdminService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession

    def get(self, user_id):
        """The user with ``user_id``, or a 404."""
        user = self.db.get(User, user_id) if 0 < user_id <= MAX_ID else None
        if user is None:
            raise NotFound()
        return user

    def view(self, user_id):
        """The user with ``user_id``, announced (``vexpenses_user_viewed``)."""
        user = self.get(user_id)
        self.request.pm.hook.vexpenses_user_viewed(request=self.request, user=user)
        return user

    def update(self, user, changes):
        """Apply ``changes`` (``{field: value}``, already checked: any of ``name``,
        ``birth_date``, ``is_admin``, ``disabled``) and announce them.

        Fires ``vexpenses_user_disabled`` or ``vexpenses_user_enabled`` when
        ``disabled`` changes the state, then ``vexpenses_user_updated`` with
        every field sent. Taking away the last enabled admin is a 422.
        """
        hook = self.request.pm.hook
        disable = changes.get("disabled")
        if changes.get("is_admin") is False and user.is_admin:
            keep_an_admin(self.request, user, "is_admin")
        if disable and user.disabled_at is None:
            keep_an_admin(self.request, user, "disabled")
        for field in ("name", "birth_date", "is_admin"):
            if field in changes:
                setattr(user, field, changes[field])
        ended = None
        if disable and user.disabled_at is None:
            user.disabled_at = utcnow()
            ended = AuthService(self.request).revoke_all(user, "disabled")
        enabled = disable is False and user.disabled_at is not None
        if enabled:
            user.disabled_at = None
        self.db.flush()  # updated_at, and the cached identity forgotten at commit
        if "name" in changes:
            UserService(self.request).users_changed()  # a name filter's cached total
        if ended is not None:
            hook.vexpenses_user_disabled(request=self.request, user=user, sessions_ended=ended)
        if enabled:
            hook.vexpenses_user_enabled(request=self.request, user=user)
        hook.vexpenses_user_updated(request=self.request, user=user, fields=sorted(changes))
        return user

    def end_sessions(self, user):
        """End every login session of ``user``, announced; returns how many were active."""
        ended = AuthService(self.request).revoke_all(user, "admin")
        self.request.pm.hook.vexpenses_user_sessions_revoked(
            request=self.request, user=user, sessions_ended=ended)
        return ended
