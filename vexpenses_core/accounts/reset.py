"""Password reset: reset links, and setting a new password with one."""

import datetime
import secrets
from urllib.parse import urlencode

from sqlalchemy import select, update

from ..api import ValidationError
from ..db import utcnow
from ..models import PasswordReset, User
from .auth import AuthService
from .digests import constant_time_equal, sha256
from .interfaces import IRateLimiter
from .users import UserService
from .validation import MAX_TOKEN_LENGTH

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
        if not isinstance(raw_token, str) or not raw_token or len(raw_token) > MAX_TOKEN_LENGTH:
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
