"""The delivery loop: one connection per batch, a global pace, bounded retries.

Transient failures (4xx, dropped connection) are retried in the task with
exponential backoff, on a new connection; permanent ones (5xx) stop at once.

Each message's row is committed before the server is asked and again with
the outcome (:class:`Ledger`), never in one transaction with the send: a
transaction that fails after the server took the message, or a worker that
dies then, must not leave a run that sends it again. A row still
``sending`` when a run finds it was handed to the server by another run,
which is still at it or died; the message is never sent a second time
(at most once; see docs/mailer.md "Delivery").
"""

import dataclasses
import datetime
import logging
import time
from email.message import EmailMessage

from sqlalchemy import update

from vexpenses_core.db import utcnow
from vexpenses_core.transactions import run_in_transaction

from .backends import ConnectionFailed, PermanentError, TransientError
from .interfaces import IMailBackend
from .models import FAILED, SENDING, SENT, MailDelivery

log = logging.getLogger(__name__)

#: The longest pause between two attempts, whatever the backoff says.
MAX_BACKOFF_SECONDS = 60

#: A ``sending`` row whose attempt began longer ago than this lost its
#: worker: far longer than an attempt takes (SMTP timeouts, the backoff).
STALE_AFTER = datetime.timedelta(minutes=15)


@dataclasses.dataclass
class Outgoing:
    row: MailDelivery
    message: EmailMessage
    #: The envelope recipient: the To address in the form it travels in
    #: (``messages.recipient``), which may differ from the stored one by its
    #: IDNA domain.
    recipient: str
    #: Who it is for (``services.Recipient``): what the row may keep of them.
    to: object = None


class RateLimiter:
    """At most ``rate`` messages per second across every worker sharing this Redis.

    Each send reserves the next free slot (a timestamp kept in Redis, moved on
    by ``1 / rate`` per message) and sleeps until it; so messages leave evenly
    spaced, with no burst at the turn of a second.
    """

    def __init__(self, redis, key, rate, clock=time.time, sleep=time.sleep):
        self.redis = redis
        self.key = key
        self.interval = 1.0 / rate if rate else 0.0
        self.clock = clock
        self.sleep = sleep

    def wait(self):
        if not self.interval:
            return 0.0

        def reserve(pipe):
            now = self.clock()
            stored = pipe.get(self.key)
            slot = max(now, float(stored) if stored else 0.0)
            pipe.multi()
            keep_ms = int((slot + self.interval - now) * 1000) + 1000
            pipe.set(self.key, repr(slot + self.interval), px=keep_ms)
            return slot - now

        delay = self.redis.transaction(reserve, self.key, value_from_callable=True)
        if delay > 0:
            self.sleep(delay)
        return delay


def backoff(settings, attempt):
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, 4, 8... times)."""
    return min(settings.retry_seconds * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)


def mark_failed(row, error):
    row.status = FAILED
    row.last_error = error[:500]


class Ledger:
    """The committed record of each attempt, in short transactions of the task's own.

    :meth:`begin` commits the claim of an attempt before the message goes to
    the server, :meth:`finish` its outcome after. Both change the row only
    if its ``attempts`` is still what this run last wrote: of two runs that
    hold the same row, one sends it and the other leaves it.
    ``announce(row)`` is called for a failure, in the transaction that
    records it.
    """

    def __init__(self, request, announce):
        self.request = request
        self.announce = announce

    def _commit(self, work):
        return run_in_transaction(self.request.tm, work, log=log)

    def _update(self, row, *conditions, **values):
        return self.request.dbsession.execute(
            update(MailDelivery)
            .where(MailDelivery.id == row.id, MailDelivery.attempts == row.attempts,
                   *conditions)
            .values(**values).execution_options(synchronize_session=False)
        ).rowcount == 1

    @staticmethod
    def _scrub(item):
        # A server's reply may quote the address ("550 <ana@...>: no such user").
        if item.to is not None:
            item.row.last_error = item.to.scrub(item.row.last_error, item.recipient)

    def begin(self, item):
        """Commit attempt number ``attempts + 1`` of ``item``; False when another
        run has taken the row since (nothing is then sent)."""
        row, now = item.row, utcnow()
        self._scrub(item)
        if not self._commit(lambda: self._update(
                row, MailDelivery.status == SENDING, attempts=row.attempts + 1,
                claimed_at=now, last_error=row.last_error, message_id=row.message_id)):
            log.info("mail %s (%s) is another run's: not sent by this one", row.id, row.kind)
            return False
        row.attempts += 1
        row.claimed_at = now
        return True

    def finish(self, item):
        """Commit the outcome of ``item`` (sent or failed), and announce a failure.

        False when the row was another run's (a message never tried here).
        """
        row = item.row
        self._scrub(item)

        def work():
            done = self._update(row, status=row.status, last_error=row.last_error,
                                sent_at=row.sent_at)
            if done and row.status == FAILED:
                self.announce(row)
            return done

        return self._commit(work)


def deliver(request, outgoing, ledger, sleep=time.sleep):
    """Send ``outgoing`` (a list of :class:`Outgoing`) over one connection.

    Each row is already committed as ``sending``; ``ledger`` (a
    :class:`Ledger`) commits each attempt before it is made, and each
    outcome (status, attempts, last_error, sent_at). Returns the rows that
    failed for good.
    """
    backend = request.find_service(IMailBackend)
    settings = request.registry.mailer.settings
    limiter = RateLimiter(request.redis, request.redis_key("mailer", "next-slot"),
                          settings.rate_limit, sleep=sleep)
    sender = settings.mail_from.addr_spec
    failed = []
    connection = None
    try:
        for index, item in enumerate(outgoing):
            row = item.row
            while True:
                limiter.wait()
                if not ledger.begin(item):
                    break
                try:
                    if connection is None:
                        connection = backend.open()
                    connection.send(item.message, sender, item.recipient)
                except PermanentError as exc:
                    mark_failed(row, str(exc))
                    failed.append(row)
                    log.warning("mail %s (%s) refused: %s", row.id, row.kind, exc)
                    ledger.finish(item)
                    break
                except TransientError as exc:
                    connection = _close(connection)
                    row.last_error = str(exc)[:500]
                    if row.attempts < settings.retry_attempts:
                        pause = backoff(settings, row.attempts)
                        log.warning("mail %s (%s) attempt %d failed (%s); again in %.1f s",
                                    row.id, row.kind, row.attempts, exc, pause)
                        sleep(pause)
                        continue
                    mark_failed(row, f"gave up after {row.attempts} attempts: {exc}")
                    failed.append(row)
                    log.warning("mail %s (%s) %s", row.id, row.kind, row.last_error)
                    ledger.finish(item)
                    if isinstance(exc, ConnectionFailed):
                        # The server is unreachable: the rest of the batch would
                        # only wait out the same retries.
                        for rest in outgoing[index + 1:]:
                            mark_failed(rest.row, f"not sent: {exc}")
                            if ledger.finish(rest):
                                failed.append(rest.row)
                        return failed
                    break
                else:
                    row.status = SENT
                    row.sent_at = utcnow()
                    log.debug("mail %s (%s) sent", row.id, row.kind)
                    ledger.finish(item)
                    break
    finally:
        _close(connection)
    return failed


def _close(connection):
    if connection is not None:
        connection.close()
    return None
