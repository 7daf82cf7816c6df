"""What the mailer does in a task: build, send and record messages.

Queueing them is the tasks module's job (:mod:`.tasks`): this module never
queues; it returns what should be sent next. Hookimpls and tasks are thin.
"""

import dataclasses
import datetime
import logging
import secrets

from sqlalchemy import func, insert, select

from vexpenses_core.accounts.digests import sha256
from vexpenses_core.accounts.reset import PasswordResetService
from vexpenses_core.db import utcnow
from vexpenses_core.models import RESET, PasswordReset, User

from . import schemas
from .backends import PermanentError
from .delivery import Outgoing, deliver, mark_failed
from .messages import build_message, recipient
from .models import FAILED, SENT, MailDelivery

log = logging.getLogger(__name__)

COUNT_KEYS = ("total", "processed", "imported", "rejected", "duplicates")

#: Sent after the account is gone: the row keeps no trace of the person.
AFTER_DELETION = ("account_deleted",)
#: What such a row holds instead of the address.
ERASED = "(erased)"


@dataclasses.dataclass(frozen=True)
class Recipient:
    """Who a message goes to, and what its delivery row may keep of them."""

    user_id: int | None
    name: str
    email: str
    #: Keep neither the address nor the name in the row (a deleted user's).
    forget: bool = False

    @classmethod
    def of(cls, user):
        return cls(user.id, user.name, user.email)

    @property
    def stored(self):
        return ERASED if self.forget else self.email[:255]

    def scrub(self, text, *more):
        """``text`` without the address, its sent forms (``more``) or the name."""
        if not self.forget or not text:
            return text
        for secret in sorted({self.email, self.name, *more} - {"", None}, key=len,
                             reverse=True):
            text = text.replace(secret, "***")
        return text


# -- in a task: build, send, record ----------------------------------------------


class MailService:
    def __init__(self, request):
        self.request = request
        self.db = request.dbsession
        self.mailer = request.registry.mailer
        self.settings = self.mailer.settings

    # one message to one user

    def send_to_user(self, kind, user_id, context, language, key, to=None):
        """One of the accounts e-mails. Returns the delivery row, or None when
        there is nothing to do (already done, or the user is gone).

        ``to`` (sealed ``{"name", "email"}``) is the recipient instead of the
        user's current address. A kind of ``AFTER_DELETION`` goes to it
        although the user is gone, and its row keeps neither.
        """
        if self._done_keys([key]):
            return None
        user = self.db.get(User, user_id)
        if to is not None:
            to = self.mailer.unseal(to)
        if kind in AFTER_DELETION and to is not None:
            target = Recipient(None, to["name"], to["email"], forget=True)
        elif user is None:
            return None
        elif to is not None:
            target = Recipient(user.id, to["name"], to["email"])
        else:
            target = Recipient.of(user)
        context = dict(context)
        if "sealed" in context:
            context.update(self.mailer.unseal(context.pop("sealed")))
        context.update(self._kind_context(kind))
        return self._send([(kind, target, context, key)], language)[0]

    def _kind_context(self, kind):
        setting = {"reset": "vexpenses.reset_token_minutes",
                   "verify_email": "vexpenses.verify_token_minutes",
                   "confirm_email": "vexpenses.email_change_token_minutes"}.get(kind)
        return {"minutes": self.request.registry.settings[setting]} if setting else {}

    def import_finished(self, import_id, uploader_id, status, counts, invitations, language):
        key = f"import_finished:{import_id}"
        base = self.request.registry.settings["vexpenses.base_url"]
        context = {
            "import_id": import_id,
            "status": status,
            "succeeded": status == 1,
            "counts": {name: counts.get(name, 0) for name in COUNT_KEYS},
            "invitations": invitations,
            "errors_url": f"{base}/api/v1/user/import-status/{import_id}/errors",
        }
        if self._done_keys([key]):
            return None
        user = self.db.get(User, uploader_id)
        if user is None:
            return None
        return self._send([("import_finished", Recipient.of(user), context, key)],
                          language)[0]

    # invitations: tokens first, then the sends in batches

    def create_invitations(self, import_id, user_ids):
        """Make a set-password token for each new user (one INSERT).

        Returns the batches to send, one per ``batch_size`` users, each sealed
        (the raw tokens are readable only by the sending task); the caller
        queues one task per batch.
        """
        if not self.settings.invitations:
            return []
        wanted = sorted(set(user_ids))
        done = self._done_keys([self._invitation_key(import_id, uid) for uid in wanted])
        wanted = [uid for uid in wanted if self._invitation_key(import_id, uid) not in done]
        existing = []
        for chunk in _chunks(wanted, 1000):
            # A disabled user gets no invitation (nor any reset link) until enabled.
            existing += self.db.scalars(select(User.id).where(
                User.id.in_(chunk), User.disabled_at.is_(None))).all()
        if not existing:
            return []
        now = utcnow()
        expires = now + datetime.timedelta(days=self.settings.invitation_days)
        pairs = [[uid, secrets.token_urlsafe(32)] for uid in sorted(existing)]
        # Only the hash is stored, as for a reset link; the raw token goes to the mail.
        self.db.execute(insert(PasswordReset.__table__), [
            {"user_id": uid, "purpose": RESET, "token_hash": sha256(raw), "created_at": now,
             "expires_at": expires}
            for uid, raw in pairs
        ])
        return [self.mailer.seal(chunk) for chunk in _chunks(pairs, self.settings.batch_size)]

    def send_invitations(self, import_id, sealed, language):
        """Send one batch of invitations over one connection; returns the rows."""
        tokens = dict(self.mailer.unseal(sealed))
        done = self._done_keys([self._invitation_key(import_id, uid) for uid in tokens])
        ids = [uid for uid in tokens if self._invitation_key(import_id, uid) not in done]
        if not ids:
            return []
        # Disabled since the tokens were made: not sent (the link would not work).
        users = self.db.scalars(select(User).where(
            User.id.in_(ids), User.disabled_at.is_(None)).order_by(User.id)).all()
        resets = PasswordResetService(self.request)
        days = self.settings.invitation_days
        items = [
            ("invitation", Recipient.of(user),
             {"invite_url": resets.reset_url(tokens[user.id], user.email), "days": days},
             self._invitation_key(import_id, user.id))
            for user in users
        ]
        rows = self._send(items, language)
        sent = sum(1 for row in rows if row.status == SENT)
        log.info("import %s: %d invitations sent, %d failed", import_id, sent, len(rows) - sent)
        return rows

    @staticmethod
    def _invitation_key(import_id, user_id):
        return f"invitation:{import_id}:{user_id}"

    # the common path

    def _done_keys(self, keys):
        found = set()
        for chunk in _chunks(list(keys), 500):
            found.update(self.db.scalars(
                select(MailDelivery.dedupe_key).where(MailDelivery.dedupe_key.in_(chunk))
            ))
        return found

    def _send(self, items, language):
        """Build, record and send ``items`` (``(kind, recipient, context, key)``) over
        one connection; announce each failure. Returns the rows."""
        rows, outgoing = self._prepare(items, language)
        deliver(self.request, outgoing)
        for item in outgoing:
            # A server's reply may quote the address ("550 <ana@...>: no such user").
            item.row.last_error = item.to.scrub(item.row.last_error, item.recipient)
        for row in rows:
            if row.status == FAILED:
                self._announce(row)
        return rows

    def _prepare(self, items, language):
        """Render and build each message, and add its row (one flush for all).

        Returns ``(rows, outgoing)``: a message that cannot be built (an
        invalid address) is failed at once and not in ``outgoing``.
        """
        templates = self.mailer.templates
        sender = self.settings.mail_from
        outgoing, rows = [], []
        for kind, target, context, key in items:
            full = {**context, "name": target.name, "email": target.email,
                    "app_url": self.settings.app_url}
            subject, text, html = templates.render(kind, language, full)
            row = MailDelivery(kind=kind, user_id=target.user_id, recipient=target.stored,
                               subject=target.scrub(subject)[:255], attempts=0,
                               dedupe_key=key)
            rows.append(row)
            try:
                to = recipient(target.name, target.email)
                message = build_message(sender, to, subject, text, html)
            except PermanentError as exc:
                mark_failed(row, str(exc))
                continue
            row.message_id = message["Message-ID"]
            outgoing.append(Outgoing(row, message, to.addr_spec, target))
        self.db.add_all(rows)
        self.db.flush()
        return rows, outgoing

    def _announce(self, row):
        try:
            self.request.pm.hook.vexpenses_mail_failed(
                request=self.request, message_id=row.id, to=row.recipient, kind=row.kind,
                error=row.last_error,
            )
        except Exception:
            # A listener's bug must not lose the record of what was sent.
            log.exception("a vexpenses_mail_failed hookimpl raised for mail %s", row.id)


def delivery_dict(row):
    """A delivery as the API lists it, dumped from its published model."""
    return schemas.MailDelivery.model_validate(row, from_attributes=True).model_dump()


def deliveries_page(dbsession, page_offset, limit, status=None, kind=None):
    """One page of delivery rows, newest first, and the total."""
    conditions = []
    if status:
        conditions.append(MailDelivery.status == status)
    if kind:
        conditions.append(MailDelivery.kind == kind)
    total = dbsession.scalar(select(func.count()).select_from(MailDelivery).where(*conditions))
    rows = dbsession.scalars(
        select(MailDelivery).where(*conditions).order_by(MailDelivery.id.desc())
        .offset(page_offset).limit(limit)
    ).all()
    return rows, total


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]
