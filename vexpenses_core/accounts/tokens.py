"""The tokens behind e-mailed links: password reset, verification, e-mail change.

One mechanism for all of them (models.AccountToken): the raw token is
random and goes only into the link; the database keeps its SHA-256. A
token works once, until it expires, and only for its purpose: a
verification link never resets a password. A new link retires the user's
earlier unused links of the same purpose.
"""

import datetime
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update

from ..api import ValidationError
from ..db import utcnow
from ..models import AccountToken, User
from .digests import sha256
from .validation import MAX_TOKEN_LENGTH


@dataclass(frozen=True)
class Refusals:
    """What a 422 on ``token`` says, per purpose."""

    invalid: str
    expired: str
    used: str


class LinkTokens:
    """The links of one purpose (``models.RESET``, ``VERIFY`` or ``EMAIL_CHANGE``)."""

    def __init__(self, request, purpose, refusals):
        self.db = request.dbsession
        self.purpose = purpose
        self.refusals = refusals

    def create(self, user, minutes, new_email=None):
        """A new raw token for ``user``, valid ``minutes``; earlier unused ones stop working."""
        now = utcnow()
        self.retire(user)
        raw = secrets.token_urlsafe(32)
        self.db.add(
            AccountToken(
                user_id=user.id,
                purpose=self.purpose,
                new_email=new_email,
                token_hash=sha256(raw),
                created_at=now,
                expires_at=now + datetime.timedelta(minutes=minutes),
            )
        )
        return raw

    def retire(self, user):
        """Make ``user``'s unused links of this purpose expire now."""
        self.db.execute(
            update(AccountToken)
            .where(AccountToken.user_id == user.id, AccountToken.purpose == self.purpose,
                   AccountToken.used_at.is_(None))
            .values(expires_at=utcnow())
        )

    def find(self, raw_token):
        """``(token row, user)``, locked for update; a 422 when the token is unknown.

        Looked up by digest, never by the raw value; anything but a string of
        a sensible length is refused before it is hashed.
        """
        if not isinstance(raw_token, str) or not raw_token or len(raw_token) > MAX_TOKEN_LENGTH:
            raise ValidationError({"token": [self.refusals.invalid]})
        row = self.db.execute(
            select(AccountToken, User)
            .join(User, User.id == AccountToken.user_id)
            .where(AccountToken.token_hash == sha256(raw_token),
                   AccountToken.purpose == self.purpose)
            .with_for_update()
        ).first()
        if row is None:
            raise ValidationError({"token": [self.refusals.invalid]})
        return row

    def use(self, token):
        """Mark ``token`` used; a 422 when it was used already or has expired."""
        if token.used_at is not None:
            raise ValidationError({"token": [self.refusals.used]})
        if token.expires_at <= utcnow():
            raise ValidationError({"token": [self.refusals.expired]})
        token.used_at = utcnow()

    def consume(self, raw_token):
        """``(token row, user)`` for a usable token, which is now used; else a 422."""
        token, user = self.find(raw_token)
        self.use(token)
        return token, user
