"""Per-user import quotas: uploads per hour and rows per day, answered with 429.

Both are counted in the core rate limiter's store (Redis when configured,
memory on the embedded default), under the user's id; admins are exempt.

Uploads use a moving window, as the core's limits do. Rows use a sliding
window counter: two counters per user whatever the rows, where a moving
window would store one Redis list entry per row. A refused charge counts
nothing, so a file too big for what is left does not use the quota up.
"""

import math
import time

from limits import RateLimitItemPerDay, RateLimitItemPerHour
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

from vexpenses_core.accounts.ratelimit import RateLimited
from vexpenses_core.api import RequestTooLarge


class ImportQuotas:
    def __init__(self, storage, uploads_per_hour, rows_per_day):
        self.uploads = MovingWindowRateLimiter(storage)
        self.rows = SlidingWindowCounterRateLimiter(storage)
        self.upload_item = RateLimitItemPerHour(uploads_per_hour) if uploads_per_hour else None
        self.row_item = RateLimitItemPerDay(rows_per_day) if rows_per_day else None

    def charge_upload(self, user):
        """Count one upload; 429 when the user made too many this hour."""
        if user.is_admin or self.upload_item is None:
            return
        key = str(user.id)
        if not self.uploads.hit(self.upload_item, "csv_import_uploads", key):
            reset_at = self.uploads.get_window_stats(self.upload_item, "csv_import_uploads",
                                                     key).reset_time
            raise RateLimited(reset_at - time.time())

    def charge_rows(self, user, rows):
        """Count a file's rows; 413 when it alone is over the daily quota, 429 when
        the user's rows of the last day leave no room for it."""
        item = self.row_item
        if user.is_admin or item is None or rows <= 0:
            return
        if rows > item.amount:
            raise RequestTooLarge(
                f"The file has {rows} rows; at most {item.amount} rows may be imported "
                f"per day.")
        key = str(user.id)
        if not self.rows.hit(item, "csv_import_rows", key, cost=rows):
            window = self.rows.storage.get_sliding_window(
                item.key_for("csv_import_rows", key), item.get_expiry())
            raise RateLimited(rows_retry_after(item.amount, item.get_expiry(), rows, *window))


def rows_retry_after(limit, expiry, rows, previous, previous_ttl, current, current_ttl):
    """Seconds until ``rows`` fit in a sliding window counter.

    The previous window's count weighs ``previous_ttl / expiry`` and fades to
    nothing when the current window ends, ``current_ttl - expiry`` from now;
    the current window's count then fades in turn over one ``expiry``.
    """
    room = limit - rows - current
    if room >= 0 and previous:
        wait = previous_ttl - expiry * room / previous
    else:
        ends_in = max(current_ttl - expiry, 0)
        wait = ends_in + (expiry * (1 - (limit - rows) / current) if current else 0)
    return math.ceil(max(wait, 0)) + 1  # the counts are floored; a second covers it
