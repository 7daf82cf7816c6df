"""Deleting an account: the LGPD right to erasure.

Each plugin erases what it holds about the person first
(``vexpenses_erase_user``); then the ``users`` row goes, and with it, by
the foreign keys' ``ON DELETE CASCADE``, the person's login sessions, their
refresh tokens and their e-mailed link tokens. Rows that other people need
stay without the link (``ON DELETE SET NULL``): csv_import's imports, the
mailer's delivery log. SQLite enforces foreign keys only when asked: the
engine turns ``PRAGMA foreign_keys`` on for every connection
(vexpenses_core.db).
"""

from .admin import keep_an_admin
from .auth import AuthService
from .users import UserService


class DeletionService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession

    def delete_own(self, user, current_password):
        """``DELETE /me``: delete ``user``'s account once they prove their password.

        The proof counts towards the account's login limits, as a password
        change does, so a stolen access token buys no free guesses: raises
        ``RateLimited``, or a 422 on ``current_password``. The last enabled
        admin cannot delete themselves (a 422 on ``user``).
        """
        AuthService(self.request).prove_password(user, current_password)
        self.delete(user, by_admin=False)

    def delete(self, user, by_admin):
        """Erase ``user`` everywhere and delete the account, announced.

        ``vexpenses_erase_user`` runs first, while the row still exists; a
        hookimpl that raises fails the whole deletion. Then the row goes (the
        cached identity is forgotten at the commit: identity.py watches
        deleted users), and ``vexpenses_user_deleted`` gets the detached user.
        """
        request = self.request
        keep_an_admin(request, user, "user")
        request.pm.hook.vexpenses_erase_user(request=request, user=user)
        # Loaded now: the hook after the deletion reads them from a detached object.
        for name in ("id", "name", "email", "birth_date", "is_admin"):
            getattr(user, name)
        self.db.delete(user)
        self.db.flush()
        self.db.expunge(user)
        UserService(request).users_changed()
        request.pm.hook.vexpenses_user_deleted(request=request, user=user, by_admin=by_admin)
        return user
