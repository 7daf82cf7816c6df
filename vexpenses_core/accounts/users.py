"""Users: registration, profiles and the user list (its cached totals and cursors)."""

import base64
import json
import time

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from transaction.interfaces import NoTransaction

from ..api import ValidationError
from ..models import User
from ..paginator import PER_PAGE, offset_for
from ..transactions import after_commit
from . import schemas
from .digests import sha256
from .interfaces import IPasswordHasher, IRateLimiter


def _fields(model, user):
    # The model's fields, read off the ORM object. Not model_validate(): these
    # are plain columns, already typed, and the check cost a tenth of a GET /me.
    return {name: getattr(user, name) for name in model.model_fields}


def user_dict(user):
    """The public user object (schemas.User, as published); never a hash or a token."""
    return _fields(schemas.User, user)


def me_dict(user):
    """The user's own profile (schemas.Me): the public object and ``email_verified_at``."""
    return _fields(schemas.Me, user)


def admin_dict(user):
    """A user as an admin sees them (schemas.AdminUser)."""
    return _fields(schemas.AdminUser, user)


class UserService:
    COUNT_TTL = 60

    def __init__(self, request):
        self.request = request

    # Looked up when first used: a request that reads neither (GET /me, whose
    # user comes from the identity cache) then opens no database session and
    # commits nothing.
    @property
    def db(self):
        return self.request.dbsession

    @property
    def redis(self):
        return self.request.redis

    @property
    def hasher(self):
        # Looked up when needed: a first lookup costs a request about 40 us.
        return self.request.find_service(IPasswordHasher)

    def by_email(self, email):
        return self.db.scalar(select(User).where(User.email == email))

    def sign_up(self, name, email, password, birth_date):
        """:meth:`register` for ``POST /register``: limited per client address.

        Each registration hashes a password and mails a welcome: not for free.
        """
        self.request.find_service(IRateLimiter).hit(
            "register_ip", self.request.client_addr or "-")
        return self.register(name, email, password, birth_date)

    def register(self, name, email, password, birth_date, is_admin=False):
        """Add a user and announce it (``vexpenses_user_registered``)."""
        if self.by_email(email) is not None:
            raise ValidationError({"email": ["The email has already been taken."]})
        user = User(
            name=name,
            email=email,
            password_hash=self.hasher.hash(password) if password else None,
            birth_date=birth_date,
            is_admin=is_admin,
        )
        self.db.add(user)
        try:
            self.db.flush()
        except IntegrityError:  # the same e-mail registered at the same moment
            raise ValidationError({"email": ["The email has already been taken."]}) from None
        self.users_changed()
        self.request.pm.hook.vexpenses_user_registered(request=self.request, user=user)
        return user

    def promote(self, user):
        """Make ``user`` an administrator; their password stays theirs."""
        user.is_admin = True

    def profile(self, user):
        """``user``'s own profile, announced (``vexpenses_profile_viewed``)."""
        self.request.pm.hook.vexpenses_profile_viewed(request=self.request, user=user)
        return user

    def update_profile(self, user, changes):
        """Set ``user``'s ``changes`` (``{field: value}``, already checked) and announce
        it (``vexpenses_profile_updated``). Returns the user."""
        for field, value in changes.items():
            setattr(user, field, value)
        self.db.flush()  # updated_at, and the cached identity forgotten at commit
        if "name" in changes:
            self.users_changed()  # a name filter's cached total may change
        self.request.pm.hook.vexpenses_profile_updated(
            request=self.request, user=user, fields=sorted(changes))
        return user

    def search(self, viewer, filters, page=1, after=None):
        """Users matching ``filters`` (name, email), announced as listed by ``viewer``.

        ``(one page of users, the total)``; or, for the cursor walk from id
        ``after``, ``(up to PER_PAGE + 1 users, None)``: the extra one tells
        that more follow.

        With ``vexpenses.accounts.user_list = admins`` a viewer who is not an
        admin finds only themselves (when the filters match them).
        """
        if not self.may_list_everyone(viewer):
            found = self.only(viewer, page, after, **filters)
        elif after is None:
            found = self.page(page, **filters)
        else:
            found = self.after(after, **filters, limit=PER_PAGE + 1), None
        self.request.pm.hook.vexpenses_users_listed(
            request=self.request, user=viewer, filters=filters)
        return found

    def may_list_everyone(self, viewer):
        """Whether ``viewer`` sees every user in the list (docs/accounts.md#who-may-list-users)."""
        return (viewer.is_admin
                or self.request.registry.settings["vexpenses.accounts.user_list"] == "all")

    def only(self, viewer, page=1, after=None, name=None, email=None):
        """:meth:`search`'s answer for a list holding ``viewer`` alone."""
        users = self.db.scalars(
            select(User).where(User.id == viewer.id, *self._filters(name, email))).all()
        if after is not None:
            return [user for user in users if user.id > after], None
        return (users if offset_for(page) == 0 else []), len(users)

    def set_password(self, user, password):
        user.password_hash = self.hasher.hash(password)

    # Listing. The total of a filtered list is cached briefly in Redis, keyed
    # by a version that any change to the users table bumps.

    def users_changed(self):
        """Call after adding or removing users, so cached totals are dropped.

        The bump waits for the commit: a count taken before it would cache the
        old total under the new version.
        """
        key = self.request.redis_key("users", "version")
        try:
            after_commit(self.request, self.redis.incr, key)
        except NoTransaction:  # nothing to wait for
            self.redis.incr(key)

    def _filters(self, name, email):
        conditions = []
        if name:
            conditions.append(User.name.contains(name, autoescape=True))
        if email:
            conditions.append(User.email.contains(email.lower(), autoescape=True))
        return conditions

    def count(self, name=None, email=None):
        version = int(self.redis.get(self.request.redis_key("users", "version")) or 0)
        key = self.request.redis_key("users", "count", sha256(json.dumps([version, name, email])))
        cached = self.redis.get(key)
        if cached is not None:
            return int(cached)
        # A count over a million rows takes most of a second: when the cache
        # is empty, one request counts while the others wait for its answer.
        lock = key + ":counting"
        counting = self.redis.set(lock, 1, nx=True, ex=30)
        if not counting:
            for _ in range(40):
                time.sleep(0.05)
                cached = self.redis.get(key)
                if cached is not None:
                    return int(cached)
        try:
            total = self.db.scalar(
                select(func.count()).select_from(User).where(*self._filters(name, email))
            )
            self.redis.set(key, total, ex=self.COUNT_TTL)
        finally:
            if counting:
                self.redis.delete(lock)
        return total

    def page(self, page, name=None, email=None):
        """One page of users ordered by id, and the total.

        Deferred join: the OFFSET skips ids only, and whole rows are read for
        the ten ids found. On InnoDB skipping still walks the clustered index,
        so a page past the middle is found from the other end: the last page
        costs what the first does. (The middle page of a million users still
        skips half of them; clients that walk everything use the cursor.)
        """
        total = self.count(name, email)
        offset = offset_for(page)
        if offset >= total:
            return [], total
        size = min(PER_PAGE, total - offset)
        ids = select(User.id).where(*self._filters(name, email))
        if offset > total // 2:
            ids = ids.order_by(User.id.desc()).offset(total - offset - size)
        else:
            ids = ids.order_by(User.id).offset(offset)
        ids = ids.limit(size).subquery()
        users = self.db.scalars(
            select(User).join(ids, ids.c.id == User.id).order_by(User.id)
        ).all()
        return users, total

    def after(self, after_id, name=None, email=None, limit=PER_PAGE):
        """Users with an id above ``after_id``: the cursor walk, fast at any depth."""
        return self.db.scalars(
            select(User)
            .where(User.id > after_id, *self._filters(name, email))
            .order_by(User.id)
            .limit(limit)
        ).all()


def encode_cursor(last_id):
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")
