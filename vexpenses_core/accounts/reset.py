"""Password reset: reset links, and setting a new password with one."""

from urllib.parse import urlencode

from ..api import ValidationError
from ..db import utcnow
from ..models import RESET
from .auth import AccountDisabled, AuthService
from .digests import constant_time_equal
from .interfaces import IRateLimiter
from .tokens import LinkTokens, Refusals
from .users import UserService

RESET_INVALID = "This password reset token is invalid."
RESET_EXPIRED = "This password reset link has expired. Please ask for a new one."
RESET_USED = "This password reset link has already been used. Please ask for a new one."
REFUSALS = Refusals(invalid=RESET_INVALID, expired=RESET_EXPIRED, used=RESET_USED)


class PasswordResetService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.settings = request.registry.settings
        self.tokens = LinkTokens(request, RESET, REFUSALS)

    def reset_url(self, raw_token, email):
        query = urlencode({"token": raw_token, "email": email})
        return f"{self.settings['vexpenses.base_url']}/reset-password?{query}"

    def request_reset(self, email):
        """``(user, reset_url)`` for the account with ``email``, announced; None when
        there is none, or when it is disabled (no link, no e-mail).

        Run in a task, never in the request: the answer to forgot-password
        must not wait on whether the address has an account.
        """
        user = UserService(self.request).by_email(email)
        if user is None or user.disabled_at is not None:
            return None
        url = self.create_token(user)
        self.request.pm.hook.vexpenses_password_reset_requested(
            request=self.request, user=user, reset_url=url)
        return user, url

    def create_token(self, user):
        """A new reset link for ``user``; earlier unused links stop working."""
        raw = self.tokens.create(user, self.settings["vexpenses.reset_token_minutes"])
        return self.reset_url(raw, user.email)

    def consume(self, email, raw_token):
        """The user whose link this is, marking it used.

        A 422 when the link can't be used; a 403 when the account is disabled.
        """
        reset, user = self.tokens.find(raw_token)
        if not constant_time_equal(user.email, email or ""):
            raise ValidationError({"token": [RESET_INVALID]})
        self.tokens.use(reset)
        if user.disabled_at is not None:
            raise AccountDisabled()
        return user

    def limit_requests(self, email):
        """Count a forgot-password request against the client's address and ``email``."""
        limiter = self.request.find_service(IRateLimiter)
        limiter.hit("forgot_ip", self.request.client_addr or "-")
        limiter.hit("forgot_email", email)

    def complete(self, email, raw_token, password):
        """Set a new password with a reset link, and announce it.

        Uses the link up, ends every session of the user and clears their
        failed logins (a fresh start). The link came to the account's
        address, so using it proves the address: an unverified user is now
        verified (this is how imported users, whose invitation is a reset
        link, become verified). Returns the user; 422 when the link can't be
        used, 403 when the account is disabled.
        """
        request = self.request
        user = self.consume(email, raw_token)
        UserService(request).set_password(user, password)
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
        ended = AuthService(request).revoke_all(user, "password_reset")
        request.find_service(IRateLimiter).login_succeeded(user.email)
        request.pm.hook.vexpenses_password_reset_completed(
            request=request, user=user, sessions_ended=ended)
        return user
