"""What the mailer does in a task: build, send and record messages.

Queueing them is the tasks module's job (:mod:`.tasks`): this module never
queues; it returns what should be sent next. Hookimpls and tasks are thin.

The sending methods run with no transaction open (their tasks have
``own_transactions``): each message's row is claimed in a committed
transaction before the server is asked (:meth:`MailService._claim`), and its
outcome committed after (:class:`.delivery.Ledger`).
"""

import dataclasses
import datetime
import logging
import secrets

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from vexpenses_core.accounts.digests import sha256
from vexpenses_core.accounts.reset import PasswordResetService
from vexpenses_core.db import utcnow
from vexpenses_core.models import RESET, PasswordReset, User
from vexpenses_core.transactions import run_in_transaction

from . import schemas
from .backends import PermanentError
from .delivery import STALE_AFTER, Ledger, Outgoing, deliver, mark_failed
from .messages import build_message, recipient
from .models import SENDING, SENT, MailDelivery

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
        if to is not None:
            to = self.mailer.unseal(to)
        context = dict(context)
        if "sealed" in context:
            context.update(self.mailer.unseal(context.pop("sealed")))
        context.update(self._kind_context(kind))

        def items():
            user = self.db.get(User, user_id)
            if kind in AFTER_DELETION and to is not None:
                target = Recipient(None, to["name"], to["email"], forget=True)
            elif user is None:
                return []
            elif to is not None:
                target = Recipient(user.id, to["name"], to["email"])
            else:
                target = Recipient.of(user)
            return [(kind, target, context, key)]

        rows = self._send(items, language)
        return rows[0] if rows else None

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

        def items():
            user = self.db.get(User, uploader_id)
            if user is None:
                return []
            return [("import_finished", Recipient.of(user), context, key)]

        rows = self._send(items, language)
        return rows[0] if rows else None

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
        resets = PasswordResetService(self.request)
        days = self.settings.invitation_days

        def items():
            # Those already sent are skipped when claimed (``_claim``).
            # Disabled since the tokens were made: not sent (the link would not work).
            users = self.db.scalars(select(User).where(
                User.id.in_(list(tokens)), User.disabled_at.is_(None)).order_by(User.id)).all()
            return [
                ("invitation", Recipient.of(user),
                 {"invite_url": resets.reset_url(tokens[user.id], user.email), "days": days},
                 self._invitation_key(import_id, user.id))
                for user in users
            ]

        rows = self._send(items, language)
        if rows:
            sent = sum(1 for row in rows if row.status == SENT)
            log.info("import %s: %d invitations sent, %d not", import_id, sent,
                     len(rows) - sent)
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
        """Claim, send and record the messages ``items()`` returns
        (``(kind, recipient, context, key)``) over one connection. Returns the
        rows this run sent or failed.

        ``items`` runs in the claim's transaction, so what it reads (the user,
        their address) is read again if that transaction is.
        """
        outgoing, failed = run_in_transaction(
            self.request.tm, lambda: self._claim(items(), language), log=log)
        deliver(self.request, outgoing, Ledger(self.request, self._announce))
        return failed + [item.row for item in outgoing if item.row.status != SENDING]

    def _claim(self, items, language):
        """Render and build each message, and commit its row as ``sending``.

        Returns the :class:`Outgoing` this run is to send, and the rows it
        failed without sending. A key already in
        the table is skipped, except a row ``sending`` that no run has tried
        yet (its run died before it came to it: :meth:`.Ledger.begin` lets
        only one run take it); and a row ``sending`` that was tried by a run
        that has given no sign for ``STALE_AFTER`` is failed, not sent again:
        the server may have taken it (at most once). A message that cannot be
        built (an invalid address) is failed at once and not in the result.
        """
        if not items:
            return [], []
        now = utcnow()
        existing = self._existing([key for *_, key in items])
        templates = self.mailer.templates
        sender = self.settings.mail_from
        outgoing, new, failed = [], [], []
        for kind, target, context, key in items:
            row = existing.get(key)
            if row is not None and row.status != SENDING:
                continue
            if row is not None and row.attempts:
                if row.claimed_at is not None and now - row.claimed_at < STALE_AFTER:
                    continue  # another run is sending it, or waiting to try again
                mark_failed(row, f"interrupted during attempt {row.attempts}: the server "
                                 "may have accepted it; not sent again")
                failed.append(row)
                continue
            full = {**context, "name": target.name, "email": target.email,
                    "app_url": self.settings.app_url}
            subject, text, html = templates.render(kind, language, full)
            if row is None:
                row = MailDelivery(kind=kind, user_id=target.user_id, recipient=target.stored,
                                   subject=target.scrub(subject)[:255], attempts=0,
                                   dedupe_key=key, status=SENDING)
                new.append(row)
            row.claimed_at = now
            try:
                to = recipient(target.name, target.email)
                message = build_message(sender, to, subject, text, html)
            except PermanentError as exc:
                mark_failed(row, str(exc))
                failed.append(row)
                continue
            row.message_id = message["Message-ID"]
            outgoing.append(Outgoing(row, message, to.addr_spec, target))
        # Rows another run added meanwhile are left out, with their messages.
        written = self._insert(new)
        ours = [row for row in new if row in written]
        outgoing = [dataclasses.replace(item, row=written.get(item.row, item.row))
                    for item in outgoing if item.row not in new or item.row in ours]
        failed = [written.get(row, row) for row in failed if row not in new or row in ours]
        self.db.flush()
        for row in failed:
            self._announce(row)
        return outgoing, failed

    def _existing(self, keys):
        rows = {}
        for chunk in _chunks(list(keys), 500):
            rows.update((row.dedupe_key, row) for row in self.db.scalars(
                select(MailDelivery).where(MailDelivery.dedupe_key.in_(chunk))))
        return rows

    def _insert(self, rows):
        """Add ``rows`` (one flush for all). Returns ``{row: the row written}``,
        without those whose key another run added since :meth:`_existing`
        looked: that run has the message."""
        if not rows:
            return {}
        try:
            with self.db.begin_nested():
                self.db.add_all(rows)
            return {row: row for row in rows}
        except IntegrityError:
            pass
        written = {}
        for row in rows:
            copy = _copy(row)  # the savepoint's rollback took ``row`` out of the session
            try:
                with self.db.begin_nested():
                    self.db.add(copy)
            except IntegrityError:
                log.info("mail %s (%s) is another run's: not sent by this one",
                         row.dedupe_key, row.kind)
                continue
            written[row] = copy
        return written

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


def _copy(row):
    """A new row with ``row``'s values; the defaults fill what it has not (the id)."""
    values = {column.key: getattr(row, column.key) for column in MailDelivery.__table__.columns}
    return MailDelivery(**{key: value for key, value in values.items()
                           if value is not None and key != "id"})


def _chunks(items, size):
    for start in range(0, len(items), size):
        yield items[start:start + size]
