"""Accounts logic: users, login sessions and tokens, password resets.

Views and commands call these; they never touch the models directly.
Every service is request-scoped: it works in ``request.dbsession``'s
transaction and announces what happened through the plugin hooks.
"""

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import secrets
import time
import uuid
from urllib.parse import urlencode

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from transaction.interfaces import NoTransaction

from ..api import APIError, ValidationError
from ..db import utcnow
from ..models import AuthSession, PasswordReset, RefreshToken, User
from ..paginator import PER_PAGE, offset_for
from ..security import oldest_live_login, session_limit
from ..transactions import after_commit
from . import schemas
from .interfaces import IPasswordHasher, IRateLimiter


def sha256(value):
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equal(a, b):
    """``a == b`` for two strings, in time that does not depend on where they differ.

    ``hmac.compare_digest`` raises TypeError for a ``str`` holding anything
    but ASCII (an address such as ``böb@example.com``), so compare the UTF-8
    bytes; ``surrogatepass`` so that a lone surrogate from JSON cannot raise.
    """
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"),
                               b.encode("utf-8", "surrogatepass"))


def user_dict(user):
    """The public user object (schemas.User, as published); never a hash or a token."""
    return schemas.User.model_validate(user, from_attributes=True).model_dump()


class InvalidCredentials(APIError):
    status = 401

    def __init__(self):
        super().__init__("Invalid credentials.", "The provided credentials are incorrect.")


SESSION_TOO_OLD = "The login has reached its maximum lifetime; log in again."


class InvalidRefreshToken(APIError):
    status = 401

    def __init__(self, reason="The refresh token is invalid or expired."):
        super().__init__("Unauthenticated.", reason)


# -- users ------------------------------------------------------------------


class UserService:
    COUNT_TTL = 60

    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.redis = request.redis

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

    def search(self, viewer, filters, page=1, after=None):
        """Users matching ``filters`` (name, email), announced as listed by ``viewer``.

        ``(one page of users, the total)``; or, for the cursor walk from id
        ``after``, ``(up to PER_PAGE + 1 users, None)``: the extra one tells
        that more follow.
        """
        if after is None:
            found = self.page(page, **filters)
        else:
            found = self.after(after, **filters, limit=PER_PAGE + 1), None
        self.request.pm.hook.vexpenses_users_listed(
            request=self.request, user=viewer, filters=filters)
        return found

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


def decode_cursor(cursor):
    """The id a cursor points after, or a 422 for a cursor we did not make."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        # Ids are BIGINT: a larger number would overflow the query, not find nothing.
        if isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**63:
            return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        pass
    raise ValidationError({"cursor": ["The cursor is invalid."]})


# -- login sessions and tokens ------------------------------------------------


class AuthService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.settings = request.registry.settings
        self.security = request.registry.security

    hasher = UserService.hasher

    def login(self, email, password):
        """Log in under the abuse limits and announce the outcome.

        Returns ``(user, session, access token, expires_in, refresh token)``;
        raises ``RateLimited`` or :class:`InvalidCredentials`. ``email`` is
        the canonical address, so no spelling of it gets fresh attempts.
        """
        request = self.request
        limiter = request.find_service(IRateLimiter)
        limiter.hit("login_ip", request.client_addr or "-")
        limiter.hit("login_account", email)
        limiter.check_login_delay(email)
        user = self.check_password(email, password)
        if user is None:
            limiter.login_failed(email)
            request.pm.hook.vexpenses_login_failed(request=request, email=email)
            raise InvalidCredentials()
        limiter.login_succeeded(email)
        session, token, expires_in, refresh = self.start_session(user)
        request.pm.hook.vexpenses_user_logged_in(request=request, user=user,
                                                 session_id=session.id)
        return user, session, token, expires_in, refresh

    def check_password(self, email, password):
        """The user when ``password`` is right; rehashes when needed."""
        user = self.db.scalar(select(User).where(User.email == email)) if email else None
        if user is None:
            self.hasher.burn(password)
            return None
        if not self.hasher.verify(user.password_hash, password):
            return None
        if self.hasher.needs_rehash(user.password_hash):
            user.password_hash = self.hasher.hash(password)
        return user

    def _refresh_lifetime(self):
        return datetime.timedelta(days=self.settings["vexpenses.refresh_token_days"])

    def session_end(self, session):
        """When ``session`` ends for good: its expiry, or the login's absolute limit."""
        return min(session.expires_at, session_limit(self.settings, session.created_at))

    def start_session(self, user):
        """Create a login session; return (session, access token, expires_in, refresh token)."""
        now = utcnow()
        request = self.request
        session = AuthSession(
            id=uuid.uuid4().hex,
            user_id=user.id,
            created_at=now,
            last_used_at=now,
            expires_at=min(now + self._refresh_lifetime(), session_limit(self.settings, now)),
            ip_address=(request.client_addr or "")[:45] or None,
            user_agent=(request.user_agent or "")[:255] or None,
        )
        self.db.add(session)
        self.db.flush()
        refresh = self._new_refresh_token(session, now)
        token, expires_in = self._access_token(user.id, session, now)
        return session, token, expires_in, refresh

    def _new_refresh_token(self, session, now):
        raw = secrets.token_urlsafe(32)
        self.db.add(
            RefreshToken(
                session_id=session.id,
                token_hash=sha256(raw),
                created_at=now,
                expires_at=session.expires_at,
            )
        )
        return raw

    def _access_token(self, user_id, session, now):
        """An access token that expires no later than its session.

        So a token re-signed again and again (GET /refresh-token) still dies
        with the login: ``expires_in`` shrinks as the end comes near.
        """
        left = int((self.session_end(session) - now).total_seconds())
        if left < 1:
            raise InvalidRefreshToken(SESSION_TOO_OLD)
        return self.security.create_access_token(user_id, session.id, max_seconds=left)

    def access_token(self, user, session_id):
        """A new access token for the request's own live session (GET /refresh-token)."""
        session = self.db.get(AuthSession, session_id) if session_id else None
        if session is None or session.user_id != user.id or session.revoked_at is not None:
            raise InvalidRefreshToken("The session has ended.")
        return self._access_token(user.id, session, utcnow())

    def refresh(self, user):
        """``(access token, expires_in)`` for the request's own session, announced."""
        session_id = self.current_session_id()
        token, expires_in = self.access_token(user, session_id)
        self.request.pm.hook.vexpenses_token_refreshed(
            request=self.request, user=user, session_id=session_id)
        return token, expires_in

    def rotate(self, raw_token):
        """Exchange a refresh token for new tokens, and announce it.

        Returns ``(user, session, access token, expires_in, refresh token)``.
        A token that was already rotated is reuse: the whole session is
        revoked and :class:`RefreshReuse` is returned *not raised*, so that
        the revocation is committed.
        """
        result = self._rotate(raw_token)
        hook = self.request.pm.hook
        if isinstance(result, RefreshReuse):
            hook.vexpenses_refresh_reuse_detected(
                request=self.request, user=result.user, session_id=result.session.id)
        else:
            user, session = result[:2]
            hook.vexpenses_token_refreshed(request=self.request, user=user,
                                           session_id=session.id)
        return result

    def _rotate(self, raw_token):
        if not isinstance(raw_token, str) or not raw_token or len(raw_token) > 200:
            raise InvalidRefreshToken()
        now = utcnow()
        row = self.db.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == sha256(raw_token))
            .with_for_update()
        ).first()
        if row is None:
            raise InvalidRefreshToken()
        token, session = row
        if session.revoked_at is not None:
            raise InvalidRefreshToken("The session has ended.")
        if token.used_at is not None:
            self.revoke(session, "refresh_reuse")
            return RefreshReuse(self.db.get(User, session.user_id), session)
        limit = session_limit(self.settings, session.created_at)
        if limit <= now:
            raise InvalidRefreshToken(SESSION_TOO_OLD)
        if token.expires_at <= now or session.expires_at <= now:
            raise InvalidRefreshToken()
        # Compare-and-set, so two concurrent uses of one token can't both win.
        used = self.db.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
        )
        if used.rowcount != 1:
            self.revoke(session, "refresh_reuse")
            return RefreshReuse(self.db.get(User, session.user_id), session)
        session.last_used_at = now
        # Another full lifetime, but never past the login's absolute limit.
        session.expires_at = min(now + self._refresh_lifetime(), limit)
        user = self.db.get(User, session.user_id)
        refresh = self._new_refresh_token(session, now)
        access, expires_in = self._access_token(user.id, session, now)
        return user, session, access, expires_in, refresh

    def current_session_id(self):
        return self.security.claims(self.request).get("sid")

    def revoke(self, session, reason):
        if session.revoked_at is None:
            session.revoked_at = utcnow()
            session.revoked_reason = reason

    def logout(self, user):
        """End the request's own session, and announce it."""
        session_id = self.current_session_id()
        self.revoke_by_id(user, session_id, "logout")
        self._logged_out(user, session_id)

    def logout_all(self, user):
        """End every session of ``user``, announced; returns how many were active."""
        count = self.revoke_all(user)
        self._logged_out(user, None)
        return count

    def end_session(self, user, session_id):
        """End one of ``user``'s live sessions, announced; ``None`` if there is no such one."""
        session = self.revoke_by_id(user, session_id, "revoked")
        if session is not None:
            self._logged_out(user, session_id)
        return session

    def _logged_out(self, user, session_id):
        self.request.pm.hook.vexpenses_user_logged_out(
            request=self.request, user=user, session_id=session_id)

    def revoke_by_id(self, user, session_id, reason="logout"):
        """End one of ``user``'s live sessions; ``None`` if there is no such live session."""
        session = self.db.get(AuthSession, session_id) if session_id else None
        if session is None or session.user_id != user.id or session.revoked_at is not None:
            return None
        self.revoke(session, reason)
        return session

    def revoke_all(self, user, reason="logout_all"):
        """End every session of ``user``; returns how many were active."""
        result = self.db.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason)
            .execution_options(vexpenses_users=[user.id])  # see vexpenses_core.identity
        )
        return result.rowcount

    def active_sessions(self, user):
        return self.db.scalars(
            select(AuthSession)
            .where(
                and_(
                    AuthSession.user_id == user.id,
                    AuthSession.revoked_at.is_(None),
                    AuthSession.expires_at > utcnow(),
                    AuthSession.created_at > oldest_live_login(self.settings),
                )
            )
            .order_by(AuthSession.created_at.desc())
        ).all()


class RefreshReuse:
    """What :meth:`AuthService.rotate` returns when a rotated token comes back."""

    def __init__(self, user, session):
        self.user = user
        self.session = session


# -- password reset -----------------------------------------------------------


RESET_INVALID = "This password reset token is invalid."
RESET_EXPIRED = "This password reset link has expired. Please ask for a new one."
RESET_USED = "This password reset link has already been used. Please ask for a new one."


class PasswordResetService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.settings = request.registry.settings

    def reset_url(self, raw_token, email):
        query = urlencode({"token": raw_token, "email": email})
        return f"{self.settings['vexpenses.base_url']}/reset-password?{query}"

    def request_reset(self, email):
        """``(user, reset_url)`` for the account with ``email``, announced; None when
        there is none.

        Run in a task, never in the request: the answer to forgot-password
        must not wait on whether the address has an account.
        """
        user = UserService(self.request).by_email(email)
        if user is None:
            return None
        url = self.create_token(user)
        self.request.pm.hook.vexpenses_password_reset_requested(
            request=self.request, user=user, reset_url=url)
        return user, url

    def create_token(self, user):
        """A new reset link for ``user``; earlier unused links stop working."""
        now = utcnow()
        self.db.execute(
            update(PasswordReset)
            .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
            .values(expires_at=now)
        )
        raw = secrets.token_urlsafe(32)
        minutes = self.settings["vexpenses.reset_token_minutes"]
        self.db.add(
            PasswordReset(
                user_id=user.id,
                token_hash=sha256(raw),
                created_at=now,
                expires_at=now + datetime.timedelta(minutes=minutes),
            )
        )
        return self.reset_url(raw, user.email)

    def consume(self, email, raw_token):
        """The user whose link this is, marking it used; 422 when it can't be used."""
        if not isinstance(raw_token, str) or not raw_token or len(raw_token) > 200:
            raise ValidationError({"token": [RESET_INVALID]})
        row = self.db.execute(
            select(PasswordReset, User)
            .join(User, User.id == PasswordReset.user_id)
            .where(PasswordReset.token_hash == sha256(raw_token))
            .with_for_update()
        ).first()
        if row is None or not constant_time_equal(row[1].email, email or ""):
            raise ValidationError({"token": [RESET_INVALID]})
        reset, user = row
        if reset.used_at is not None:
            raise ValidationError({"token": [RESET_USED]})
        if reset.expires_at <= utcnow():
            raise ValidationError({"token": [RESET_EXPIRED]})
        reset.used_at = utcnow()
        return user

    def limit_requests(self, email):
        """Count a forgot-password request against the client's address and ``email``."""
        limiter = self.request.find_service(IRateLimiter)
        limiter.hit("forgot_ip", self.request.client_addr or "-")
        limiter.hit("forgot_email", email)

    def complete(self, email, raw_token, password):
        """Set a new password with a reset link, and announce it.

        Uses the link up, ends every session of the user and clears their
        failed logins (a fresh start). Returns the user; 422 when the link
        can't be used.
        """
        request = self.request
        user = self.consume(email, raw_token)
        UserService(request).set_password(user, password)
        ended = AuthService(request).revoke_all(user, "password_reset")
        request.find_service(IRateLimiter).login_succeeded(user.email)
        request.pm.hook.vexpenses_password_reset_completed(
            request=request, user=user, sessions_ended=ended)
        return user
