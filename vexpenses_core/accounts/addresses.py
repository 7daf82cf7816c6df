"""The account's address: proving it (verification) and moving to another (e-mail change).

Both work on e-mailed links (accounts/tokens.py, the password reset's
mechanism): a verification link goes to the account's address, a
confirmation link to the new address; the address changes only when that
link is used.
"""

from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from ..api import ValidationError
from ..db import utcnow
from ..models import EMAIL_CHANGE, VERIFY
from .auth import AccountDisabled, AuthService
from .interfaces import IRateLimiter
from .tokens import LinkTokens, Refusals
from .users import UserService

VERIFY_REFUSALS = Refusals(
    invalid="This e-mail verification token is invalid.",
    expired="This e-mail verification link has expired. Please ask for a new one.",
    used="This e-mail verification link has already been used.",
)
CHANGE_REFUSALS = Refusals(
    invalid="This e-mail change token is invalid.",
    expired="This e-mail change link has expired. Please ask for a new one.",
    used="This e-mail change link has already been used.",
)
ALREADY_VERIFIED = "This e-mail address is already verified."
SAME_EMAIL = "The new email must be different from the current one."
EMAIL_TAKEN = "The email has already been taken."


class AddressService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.settings = request.registry.settings
        self.verifications = LinkTokens(request, VERIFY, VERIFY_REFUSALS)
        self.changes = LinkTokens(request, EMAIL_CHANGE, CHANGE_REFUSALS)

    def _url(self, page, raw_token):
        return f"{self.settings['vexpenses.base_url']}/{page}?{urlencode({'token': raw_token})}"

    # -- verification ------------------------------------------------------------

    def send_verification(self, user):
        """Make a verification link for ``user`` and announce it
        (``vexpenses_email_verification_requested``); earlier unused links stop
        working. Returns the link; ``None``, and nothing sent, when the
        address is already verified or the account disabled."""
        if user.email_verified_at is not None or user.disabled_at is not None:
            return None
        raw = self.verifications.create(user, self.settings["vexpenses.verify_token_minutes"])
        url = self._url("verify-email", raw)
        self.request.pm.hook.vexpenses_email_verification_requested(
            request=self.request, user=user, verify_url=url)
        return url

    def resend(self, user):
        """``POST /verify-email/resend`` with a login: a new link for ``user``.

        A 422 on ``email`` when the address is already verified: the user
        knows their own state. Otherwise limited per user (``verify_resend``).
        """
        if user.email_verified_at is not None:
            raise ValidationError({"email": [ALREADY_VERIFIED]})
        self.request.find_service(IRateLimiter).hit("verify_resend", user.id)
        self.send_verification(user)

    def limit_anonymous_resend(self, email):
        """Count a resend without a login against the client's address and ``email``,
        as forgot-password does (``forgot_ip``, ``verify_resend``)."""
        limiter = self.request.find_service(IRateLimiter)
        limiter.hit("forgot_ip", self.request.client_addr or "-")
        limiter.hit("verify_resend", email)

    def resend_to(self, email):
        """A new link for the account with ``email``, if there is one that waits for it.

        Run in a task, never in the request (accounts.tasks.verification):
        the answer must not tell whether the address has an account.
        """
        user = UserService(self.request).by_email(email)
        return None if user is None else self.send_verification(user)

    def verify(self, raw_token):
        """Prove the address with a verification link, and announce it
        (``vexpenses_email_verified``). Returns the user.

        A 422 on ``token`` when the link can't be used; a 403 when the
        account is disabled. A user verified meanwhile (another link) keeps
        their first ``email_verified_at`` and is not announced again.
        """
        _, user = self.verifications.consume(raw_token)
        if user.disabled_at is not None:
            raise AccountDisabled()
        if user.email_verified_at is None:
            user.email_verified_at = utcnow()
            self.request.pm.hook.vexpenses_email_verified(request=self.request, user=user)
        return user

    # -- e-mail change -----------------------------------------------------------

    def request_change(self, user, new_email, current_password):
        """Send a confirmation link to ``new_email`` once ``user`` proves their
        password, and announce it (``vexpenses_email_change_requested``).

        The proof counts towards the account's login limits, exactly as in
        :meth:`AuthService.change_password` (so probing for taken addresses
        is bounded by them too); a request that passes every check then
        counts against ``email_change`` (per user). A 422 on
        ``current_password`` for a wrong password, on ``email`` for the
        current address or one taken by another account. Nothing changes
        until the link is used; an earlier unused link stops working.
        """
        request = self.request
        limiter = AuthService(request).prove_password(user, current_password)
        if new_email == user.email:
            raise ValidationError({"email": [SAME_EMAIL]})
        if UserService(request).by_email(new_email) is not None:
            raise ValidationError({"email": [EMAIL_TAKEN]})
        limiter.hit("email_change", user.id)
        raw = self.changes.create(user, self.settings["vexpenses.email_change_token_minutes"],
                                  new_email=new_email)
        url = self._url("confirm-email", raw)
        request.pm.hook.vexpenses_email_change_requested(
            request=request, user=user, new_email=new_email, confirm_url=url)
        return url

    def confirm(self, raw_token):
        """Move the account to the address the link was sent to, and announce it
        (``vexpenses_email_changed``). Returns the user.

        The new address is verified (the link reached it). Login sessions go
        on: the person proved their password to ask and the new mailbox to
        confirm; the identity cache forgets the user at the commit (an ORM
        flush on ``users``), so every session sees the new address at once.
        Outstanding verification links, sent to the old address, stop
        working. A 422 on ``token`` when the link can't be used, on
        ``email`` when another account took the address meanwhile; a 403
        when the account is disabled.
        """
        request = self.request
        token, user = self.changes.consume(raw_token)
        if user.disabled_at is not None:
            raise AccountDisabled()
        users = UserService(request)
        if users.by_email(token.new_email) is not None:
            raise ValidationError({"email": [EMAIL_TAKEN]})
        old_email = user.email
        user.email = token.new_email
        user.email_verified_at = utcnow()
        try:
            self.db.flush()
        except IntegrityError:  # taken at the same moment, by a registration or an import
            raise ValidationError({"email": [EMAIL_TAKEN]}) from None
        self.verifications.retire(user)
        users.users_changed()  # an e-mail filter's cached total may change
        request.pm.hook.vexpenses_email_changed(request=request, user=user, old_email=old_email)
        return user
