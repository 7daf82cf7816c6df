"""Login sessions and tokens: login, refresh, rotation, logout and revocation."""

import datetime
import secrets
import uuid

from sqlalchemy import and_, select, update

from ..api import APIError, ValidationError
from ..db import utcnow
from ..models import AuthSession, RefreshToken, User
from ..security import oldest_live_login, session_limit
from .digests import sha256
from .interfaces import IRateLimiter
from .users import UserService
from .validation import MAX_TOKEN_LENGTH


class InvalidCredentials(APIError):
    status = 401

    def __init__(self):
        super().__init__("Invalid credentials.", "The provided credentials are incorrect.")


class AccountDisabled(APIError):
    """403: an admin disabled the account; no login, refresh or password reset."""

    status = 403

    def __init__(self):
        super().__init__("This account is disabled.", "This account is disabled.")


EMAIL_NOT_VERIFIED = (
    "This e-mail address is not verified yet. Open the link in the verification e-mail we "
    "sent, or ask for a new one with POST /api/v1/user/verify-email/resend.")


class EmailNotVerified(APIError):
    """403: with vexpenses.accounts.require_verified_email, a login before verification."""

    status = 403

    def __init__(self):
        super().__init__("Your email address is not verified.", EMAIL_NOT_VERIFIED)


WRONG_CURRENT_PASSWORD = "The current password is incorrect."

SESSION_TOO_OLD = "The login has reached its maximum lifetime; log in again."


class InvalidRefreshToken(APIError):
    status = 401

    def __init__(self, reason="The refresh token is invalid or expired."):
        super().__init__("Unauthenticated.", reason)


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

        Only once the password is proven right, a disabled account is
        refused (:class:`AccountDisabled`), and so is an unverified one when
        ``vexpenses.accounts.require_verified_email`` is on
        (:class:`EmailNotVerified`): a wrong password never learns the
        account's state. Neither starts a session.
        """
        request = self.request
        limiter = self.spend_login_attempt(email)
        user = self.check_password(email, password)
        if user is None:
            limiter.login_failed(email)
            request.pm.hook.vexpenses_login_failed(request=request, email=email)
            raise InvalidCredentials()
        limiter.login_succeeded(email)
        self.refuse_unless_allowed(user)
        session, token, expires_in, refresh = self.start_session(user)
        request.pm.hook.vexpenses_user_logged_in(request=request, user=user,
                                                 session_id=session.id)
        return user, session, token, expires_in, refresh

    def change_password(self, user, current_password, new_password):
        """Set ``user``'s new password once they prove the current one, and announce it.

        The proof counts towards the account's login limits, as a login does:
        a stolen access token does not buy unlimited guesses. Success
        re-hashes with the configured hasher, ends every *other* session of
        the user (the request's own stays), clears their failed logins and
        fires ``vexpenses_password_changed``. Returns how many sessions ended;
        raises ``RateLimited``, or a 422 on ``current_password``.
        """
        request = self.request
        self.prove_password(user, current_password)
        UserService(request).set_password(user, new_password)
        ended = self.revoke_all(user, "password_changed", keep=self.current_session_id())
        request.pm.hook.vexpenses_password_changed(
            request=request, user=user, sessions_ended=ended)
        return ended

    def refuse_unless_allowed(self, user):
        """Raise the 403 for a user who may not log in now: disabled, or unverified
        while ``vexpenses.accounts.require_verified_email`` is on."""
        if user.disabled_at is not None:
            raise AccountDisabled()
        if (self.settings["vexpenses.accounts.require_verified_email"]
                and user.email_verified_at is None):
            raise EmailNotVerified()

    def prove_password(self, user, current_password):
        """Check ``current_password``, which a signed-in user gives to confirm a
        sensitive change (password, address, deletion).

        It counts towards the account's login limits, as a login does: a
        stolen access token does not buy unlimited guesses. Raises
        ``RateLimited``, or a 422 on ``current_password``; returns the limiter.
        """
        limiter = self.spend_login_attempt(user.email)
        if not self.hasher.verify(user.password_hash, current_password):
            limiter.login_failed(user.email)
            raise ValidationError({"current_password": [WRONG_CURRENT_PASSWORD]})
        limiter.login_succeeded(user.email)
        return limiter

    def spend_login_attempt(self, email):
        """Count a password guess for ``email`` against the login limits and the
        escalating delay (raises ``RateLimited``); return the limiter."""
        limiter = self.request.find_service(IRateLimiter)
        limiter.hit("login_ip", self.request.client_addr or "-")
        limiter.hit("login_account", email)
        limiter.check_login_delay(email)
        return limiter

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
        if (session is None or session.user_id != user.id or session.revoked_at is not None
                or user.disabled_at is not None):
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
        if not isinstance(raw_token, str) or not raw_token or len(raw_token) > MAX_TOKEN_LENGTH:
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
        user = self.db.get(User, session.user_id)
        if user.disabled_at is not None:
            # Disabling ends the sessions; this is the belt to those braces.
            raise InvalidRefreshToken("The session has ended.")
        session.last_used_at = now
        # Another full lifetime, but never past the login's absolute limit.
        session.expires_at = min(now + self._refresh_lifetime(), limit)
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

    def revoke_all(self, user, reason="logout_all", keep=None):
        """End every session of ``user`` but ``keep`` (an id); returns how many were active."""
        others = [AuthSession.id != keep] if keep else []
        result = self.db.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None), *others)
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
