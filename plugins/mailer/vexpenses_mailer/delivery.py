"""The delivery loop: one connection per batch, a global pace, bounded retries.

Transient failures (4xx, dropped connection) are retried in the task with
exponential backoff, on a new connection; permanent ones (5xx) stop at once.
Retrying inside the task, rather than queueing again, keeps one owner per
message: the delivery row is written once, in the task's transaction, so a
message is never sent by two runs that both think they are first.
"""

import dataclasses
import logging
import time
from email.message import EmailMessage

from vexpenses_core.db import utcnow

from .backends import ConnectionFailed, PermanentError, TransientError
from .interfaces import IMailBackend
from .models import FAILED, SENT, MailDelivery

log = logging.getLogger(__name__)

#: The longest pause between two attempts, whatever the backoff says.
MAX_BACKOFF_SECONDS = 60


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


def deliver(request, outgoing, sleep=time.sleep):
    """Send ``outgoing`` (a list of :class:`Outgoing`) over one connection.

    Updates each row (status, attempts, last_error, sent_at) and returns the
    rows that failed for good.
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
                row.attempts += 1
                try:
                    if connection is None:
                        connection = backend.open()
                    connection.send(item.message, sender, item.recipient)
                except PermanentError as exc:
                    mark_failed(row, str(exc))
                    failed.append(row)
                    log.warning("mail %s (%s) refused: %s", row.id, row.kind, exc)
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
                    if isinstance(exc, ConnectionFailed):
                        # The server is unreachable: the rest of the batch would
                        # only wait out the same retries.
                        for rest in outgoing[index + 1:]:
                            mark_failed(rest.row, f"not sent: {exc}")
                            failed.append(rest.row)
                        return failed
                    break
                else:
                    row.status = SENT
                    row.sent_at = utcnow()
                    log.debug("mail %s (%s) sent", row.id, row.kind)
                    break
    finally:
        _close(connection)
    return failed


def _close(connection):
    if connection is not None:
        connection.close()
    return None
