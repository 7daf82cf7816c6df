"""The export of everything held about a user (LGPD right of access).

The core gives the ``user`` and their ``sessions``; each plugin adds the
sections of its own tables through ``vexpenses_export_user``. Every list
section holds at most :data:`MAX_ROWS` rows, newest first; a section that had
more is named in ``truncated``, so the answer's size is bounded whatever the
history (the audit rows of a busy account grow without end).
"""

from sqlalchemy import inspect, select

from ..models import AuthSession, User
from .auth import AuthService
from .interfaces import IRateLimiter

MAX_ROWS = 1000
CORE_SECTIONS = ("user", "sessions", "truncated")
# A column whose name holds one of these is a secret, whatever its table:
# the password hash today, any token or key a later migration adds.
SECRET_MARKS = ("password", "hash", "token", "secret", "key")


class ExportConflict(RuntimeError):
    """Two plugins (or a plugin and the core) gave the same section: a bug in one of them."""


def is_secret(column_name):
    return any(mark in column_name for mark in SECRET_MARKS)


def stored_fields(row):
    """``{column: value}`` of a model row, without the columns that hold secrets."""
    return {column.key: getattr(row, column.key)
            for column in inspect(type(row)).column_attrs
            if not is_secret(column.key)}


class ExportService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession

    def limit(self, user):
        """Count one export of ``user``; 429 when over ``vexpenses.ratelimit.export``."""
        self.request.find_service(IRateLimiter).hit("export", user.id)

    def export(self, user):
        """``{section: data}``: everything held about ``user``, announced."""
        # The identity may come from the cache, with only /me's columns: read the row.
        stored = self.db.execute(
            select(User).where(User.id == user.id)
            .execution_options(populate_existing=True)).scalar_one()
        data = {"user": stored_fields(stored)}
        truncated = []
        sessions = self.sessions(user)
        if len(sessions) > MAX_ROWS:
            truncated.append("sessions")
        data["sessions"] = sessions[:MAX_ROWS]
        for name, value in self.plugin_sections(user).items():
            if isinstance(value, list) and len(value) > MAX_ROWS:
                truncated.append(name)
                value = value[:MAX_ROWS]
            data[name] = value
        data["truncated"] = truncated
        self.request.pm.hook.vexpenses_user_exported(request=self.request, user=user)
        return data

    def sessions(self, user):
        """Every stored session of ``user``, ended ones too, newest first, without secrets."""
        current = AuthService(self.request).current_session_id()
        rows = self.db.scalars(
            select(AuthSession).where(AuthSession.user_id == user.id)
            .order_by(AuthSession.created_at.desc(), AuthSession.id)
            .limit(MAX_ROWS + 1))
        return [{**stored_fields(row), "current": row.id == current} for row in rows]

    def plugin_sections(self, user):
        """``{section: data}`` merged from every ``vexpenses_export_user``.

        A section given twice is a plugin bug: raised, never overwritten.
        """
        hook = self.request.pm.hook.vexpenses_export_user
        merged = {}
        for sections in hook(request=self.request, user=user, limit=MAX_ROWS):
            for name, value in (sections or {}).items():
                if name in merged or name in CORE_SECTIONS:
                    implementers = sorted(impl.plugin_name for impl in hook.get_hookimpls())
                    raise ExportConflict(
                        f"the export section {name!r} is given twice; one of the plugins "
                        f"implementing vexpenses_export_user claims another's: "
                        f"{', '.join(implementers)}")
                merged[name] = value
        return merged
