"""The hash chain: appending rows, verifying them, erasing details, pruning old rows.

Each row stores ``hash = sha256(canonical JSON of its fields + prev_hash)``
(HMAC-SHA256 with ``vexpenses.audit_log.chain_key`` when one is set), and
``prev_hash``, the hash of the row before it. The personal part of a row
(description, arguments, client address, user agent) is not among those
fields: it lives in ``audit_log_details``, and the row holds
``details_hash``, the digest of a random per-row nonce and those details.
Erasing the details (:func:`erase_user`) leaves every hash intact. Ids are given by the writer,
one after the other, so a missing id is a removed row.

One row of ``audit_log_chain`` (the head) holds the last id and hash, so
that removing the newest rows shows too, and the anchor: the first row's id
and the hash it must link to (all zeros at first, the hash of the last
pruned row after a prune).

A single writer at a time: every append and every prune batch locks the
head row (``SELECT ... FOR UPDATE`` on MySQL; SQLite's ``BEGIN IMMEDIATE``,
which the core's engine issues, locks the whole database), so the chain has
one total order across processes.
"""

import dataclasses
import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets

import sqlalchemy as sa
from pyramid_retry import mark_error_retryable
from sqlalchemy.exc import DBAPIError, IntegrityError

from vexpenses_core.transactions import (
    ATTEMPTS,
    is_retryable_db_error,
    is_sqlite_busy,
    retrying,
)

from .models import AuditLogChain, AuditLogDetails, AuditLogEntry, AuditLogErased

log = logging.getLogger(__name__)

GENESIS = "0" * 64
HEAD_ID = 1

entries = AuditLogEntry.__table__
details = AuditLogDetails.__table__
erased = AuditLogErased.__table__
chain = AuditLogChain.__table__

HASHED_FIELDS = ("id", "uid", "hook", "action", "user_id", "request_id", "details_hash",
                 "created_at", "updated_at", "prev_hash")
DETAIL_FIELDS = ("nonce", "subject_id", "description", "ip_address", "user_agent", "payload")
# The personal columns of a details row, emptied by an erasure.
ERASABLE = ("description", "ip_address", "user_agent", "payload")

# An erased address's digest is kept this long, to catch records in flight
# that quote it without the user's id; the id's tombstone stays.
DIGEST_DAYS = 7
# Records made up to this long after an erasure are erased too: a request
# that loaded the user before the deletion committed may still call a hook
# just after it, and another host's clock may run a little ahead. Later
# ones are left alone (SQLite may give the id to a new account).
GRACE = datetime.timedelta(seconds=60)
# Hooks whose rows name the erased person by id only, by design, and
# record the erasure itself: never erased.
KEPT_HOOKS = frozenset({"vexpenses_user_deleted"})
_EMAIL = re.compile(r"[^\s\"'<>()\[\],;:=\\]+@[^\s\"'<>()\[\],;:=\\]+")


def utcnow():
    return datetime.datetime.now(datetime.UTC)


def stamp(value):
    """A timestamp as the hash sees it: UTC, microseconds, as stored by UTCDateTime."""
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(row, key=None):
    fields = [stamp(row[name]) if name in ("created_at", "updated_at") else row[name]
              for name in HASHED_FIELDS]
    message = json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode()
    if key:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def details_hash(row, key=None):
    """The digest of a details row (nonce included) that the chained row holds."""
    message = json.dumps([row[name] for name in DETAIL_FIELDS], ensure_ascii=True,
                         separators=(",", ":")).encode()
    if key:
        return hmac.new(key, message, hashlib.sha256).hexdigest()
    return hashlib.sha256(message).hexdigest()


def email_digest(address, key=None):
    """The keyed digest of an address, as tombstones hold it."""
    message = address.strip().rstrip(".").lower().encode()
    return hmac.new(key or b"vexpenses.audit_log.erased", message, hashlib.sha256).hexdigest()


def addresses_in(*texts):
    """The e-mail addresses quoted in ``texts`` (None skipped)."""
    found = set()
    for text in texts:
        if text:
            found.update(match.rstrip(".").lower() for match in _EMAIL.findall(text))
    return found


def parse_time(value):
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment


def lock_head(conn):
    """The chain head, locked until the transaction ends; made when missing."""
    head = conn.execute(
        sa.select(chain).where(chain.c.id == HEAD_ID).with_for_update()
    ).first()
    if head is not None:
        return head
    last = conn.execute(sa.select(entries.c.id, entries.c.hash)
                        .order_by(entries.c.id.desc()).limit(1)).first()
    first = conn.execute(sa.select(entries.c.id, entries.c.prev_hash)
                         .order_by(entries.c.id).limit(1)).first()
    if last is None:
        values = {"last_id": 0, "last_hash": GENESIS, "anchor_id": 1, "anchor_hash": GENESIS}
    else:
        # Rows without a head: someone deleted it. Carry on from the rows
        # there are, loudly; `vexpenses audit verify` cannot vouch for the
        # newest rows any more.
        log.warning("the audit chain head was missing; rebuilt it from row %d", last.id)
        values = {"last_id": last.id, "last_hash": last.hash, "anchor_id": first.id,
                  "anchor_hash": first.prev_hash}
    try:
        conn.execute(sa.insert(chain).values(id=HEAD_ID, updated_at=utcnow(), **values))
    except IntegrityError as exc:
        # Another writer made the head first: the next run finds and locks it.
        mark_error_retryable(exc)
        raise
    return conn.execute(sa.select(chain).where(chain.c.id == HEAD_ID).with_for_update()).one()


def _retrying(func):
    """Run ``func`` again on a lock timeout, deadlock or head-creation race.

    The errors the core retries (a MySQL deadlock or lock-wait timeout),
    SQLite's "database is locked", and the race :func:`lock_head` marks.
    Anything else (a refused login, an unknown database, a missing table)
    is raised at once. ``func`` uses its own connection, not a transaction
    manager.
    """

    def attempt():
        try:
            return func()
        except DBAPIError as exc:
            if is_retryable_db_error(exc) or is_sqlite_busy(exc):
                mark_error_retryable(exc)
            raise

    return retrying(attempt, ATTEMPTS, log=log)


class ChainWriter:
    """Appends records (dicts made by the recorder) to the chain, one batch per transaction."""

    def __init__(self, engine, key=None):
        self.engine = engine
        self.key = key

    def reachable(self):
        """Whether the database answers at all (a failed batch: down, or a bad record?)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except Exception:
            return False

    def append(self, records):
        """Write ``records`` in order; returns how many rows were added.

        Records already stored (same ``uid``: a batch replayed after a crash
        between the commit and the Redis trim) are skipped.
        """
        if not records:
            return 0
        return _retrying(lambda: self._append(records))

    def _append(self, records):
        now = utcnow()
        with self.engine.begin() as conn:
            head = lock_head(conn)
            uids = [record["uid"] for record in records]
            seen = set(conn.scalars(sa.select(entries.c.uid).where(entries.c.uid.in_(uids))))
            # Read after the head lock, which an erasure holds until it commits.
            tombstones = self._tombstones(conn, records)
            # Normally head.last_id; a row inserted behind the writer's back
            # must not make every later append fail.
            top = conn.scalar(sa.select(sa.func.max(entries.c.id))) or 0
            # Nor details left behind by removed rows.
            top_details = conn.scalar(sa.select(sa.func.max(details.c.entry_id))) or 0
            next_id = max(head.last_id, top, top_details) + 1
            prev = head.last_hash
            rows = []
            side_rows = []
            for record in records:
                if record["uid"] in seen:
                    continue
                seen.add(record["uid"])
                created = parse_time(record["created_at"])
                side = {
                    "entry_id": next_id,
                    "nonce": secrets.token_hex(16),
                    "subject_id": record.get("subject_id"),
                    "description": record["description"],
                    "ip_address": record["ip_address"],
                    "user_agent": record["user_agent"],
                    "payload": record["payload"],
                    "erased_at": None,
                }
                row = {
                    "id": next_id,
                    "uid": record["uid"],
                    "hook": record["hook"],
                    "action": record["action"],
                    "user_id": record["user_id"],
                    "request_id": record["request_id"],
                    "details_hash": details_hash(side, self.key),
                    "created_at": created,
                    "updated_at": created,  # rows are never updated
                    "prev_hash": prev,
                }
                row["hash"] = prev = row_hash(row, self.key)
                if tombstones.erases(record, created):
                    # Made before its user was erased, landed after: the
                    # row is chained as it was, its details never stored.
                    side.update(dict.fromkeys(ERASABLE), erased_at=now)
                rows.append(row)
                side_rows.append(side)
                next_id += 1
            if rows:
                conn.execute(sa.insert(entries), rows)
                conn.execute(sa.insert(details), side_rows)
                conn.execute(sa.update(chain).where(chain.c.id == HEAD_ID).values(
                    last_id=rows[-1]["id"], last_hash=prev, updated_at=now))
        return len(rows)

    def _tombstones(self, conn, records):
        ids = {record.get(name) for record in records for name in ("user_id", "subject_id")}
        ids.discard(None)
        digests = {email_digest(address, self.key) for record in records
                   for address in addresses_in(record["description"], record["payload"])}
        if not ids and not digests:
            return Tombstones({}, {}, self.key)
        found = conn.execute(sa.select(erased).where(sa.or_(
            erased.c.user_id.in_(ids), erased.c.email_digest.in_(digests)))).all()
        return Tombstones({row.user_id: row.erased_at for row in found},
                          {row.email_digest: row.erased_at for row in found
                           if row.email_digest}, self.key)


@dataclasses.dataclass
class Tombstones:
    """The erasures that records of one batch may predate."""

    by_user: dict
    by_digest: dict
    key: bytes | None

    def erases(self, record, created):
        if record["hook"] in KEPT_HOOKS:
            return False
        moments = [self.by_user.get(record.get(name)) for name in ("user_id", "subject_id")]
        if self.by_digest:
            moments += [self.by_digest.get(email_digest(address, self.key)) for address
                        in addresses_in(record["description"], record["payload"])]
        return any(moment is not None and created <= parse_time(moment) + GRACE
                   for moment in moments)


# -- verify -------------------------------------------------------------------


@dataclasses.dataclass
class Verification:
    ok: bool
    rows: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str | None = None
    row_id: int | None = None  # the first row found altered or removed
    problem: str | None = None
    erased: int = 0  # rows whose details were erased (allowed, and counted)


def verify(engine, key=None, batch_size=1000):
    """Walk the chain from its anchor to its head; stop at the first broken link.

    Each row's details, when present, must match its ``details_hash``;
    erased details (marked ``erased_at``) are counted, not checked.
    """
    with engine.connect() as conn:
        head = conn.execute(sa.select(chain).where(chain.c.id == HEAD_ID)).first()
        any_row = conn.scalar(sa.select(entries.c.id).limit(1))
        if head is None:
            if any_row is None:
                return Verification(ok=True)
            return Verification(ok=False, problem="the chain head (the row of audit_log_chain) "
                                "is missing: the log was emptied or tampered with")
        expected_id, expected_prev = head.anchor_id, head.anchor_hash
        previous_id = None
        count = erased_count = 0
        after = None
        while True:
            query = sa.select(entries).order_by(entries.c.id).limit(batch_size)
            if after is not None:
                query = query.where(entries.c.id > after)
            rows = conn.execute(query).all()
            if not rows:
                break
            sides = {side.entry_id: side for side in conn.execute(
                sa.select(details).where(details.c.entry_id.between(rows[0].id, rows[-1].id)))}
            for row in rows:
                side = sides.get(row.id)
                problem = (_check_row(row, expected_id, expected_prev, previous_id, key)
                           or _check_details(row, side, key))
                if problem:
                    return Verification(ok=False, rows=count, first_id=head.anchor_id,
                                        last_id=head.last_id, row_id=problem[0],
                                        problem=problem[1], erased=erased_count)
                if side.erased_at is not None:
                    erased_count += 1
                expected_prev, previous_id = row.hash, row.id
                expected_id = row.id + 1
                count += 1
            after = rows[-1].id
        result = Verification(ok=False, rows=count, first_id=head.anchor_id,
                              last_id=head.last_id, last_hash=head.last_hash,
                              erased=erased_count)
        last_seen = expected_id - 1
        if last_seen < head.last_id:
            result.row_id = last_seen + 1
            result.problem = (f"row {last_seen + 1} was removed "
                              f"(the chain ends at row {head.last_id})")
        elif last_seen > head.last_id:
            result.row_id = head.last_id + 1
            result.problem = (f"row {head.last_id + 1} is not part of the chain: it comes "
                              f"after the chain's last row, {head.last_id} (inserted?)")
        elif expected_prev != head.last_hash:
            result.row_id = head.last_id
            result.problem = f"row {head.last_id} was altered: it does not match the chain head"
        else:
            result.ok = True
        return result


def _check_row(row, expected_id, expected_prev, previous_id, key):
    """``(row id, problem)`` for the first thing wrong with ``row``, or None."""
    if row.id < expected_id:
        return row.id, (f"row {row.id} is not part of the chain: it comes before row "
                        f"{expected_id}, the chain's {'first' if previous_id is None else 'next'}"
                        " row (inserted?)")
    if row.id > expected_id:
        return expected_id, f"row {expected_id} was removed"
    if row_hash(row._mapping, key) != row.hash:
        return row.id, f"row {row.id} was altered: its contents do not match its hash"
    if row.prev_hash != expected_prev:
        if previous_id is None:
            return row.id, (f"row {row.id}, the chain's first row, does not link to the "
                            "chain's anchor")
        return previous_id, f"row {previous_id} was altered: row {row.id} no longer links to it"
    return None


def _check_details(row, side, key):
    if side is None:
        return row.id, (f"row {row.id}'s details were removed (audit_log_details has no "
                        "row for it, and no erasure mark)")
    if side.erased_at is not None:
        return None
    if details_hash(side._mapping, key) != row.details_hash:
        return row.id, (f"row {row.id} was altered: its details do not match its "
                        "details_hash")
    return None


# -- erase --------------------------------------------------------------------


def erase_user(conn, user_id, emails=(), key=None, now=None):
    """Erase the details of every row about a user; returns how many were erased.

    The rows about them: those they acted in (``user_id``), those about
    them (``subject_id``), and any whose details quote one of ``emails``,
    their addresses, current first (a failed login, an admin's list
    filter). The rows stay, chained as they were. A tombstone makes records
    made before now (or just after: ``GRACE``), and written later, land
    without details.

    ``conn`` is the caller's connection, inside the caller's transaction
    (the request's): nothing is erased unless it commits. It locks the
    chain head until then, so that no writer appends a row about the user
    between the erasure and the commit without seeing the tombstone.
    """
    now = now or utcnow()
    lock_head(conn)
    emails = [email.strip().lower() for email in emails if email]
    # In flight, only the current address is likely: the tombstone keeps its digest.
    digest = email_digest(emails[0], key) if emails else None
    conn.execute(sa.delete(erased).where(erased.c.user_id == user_id))
    conn.execute(sa.insert(erased).values(user_id=user_id, email_digest=digest, erased_at=now))
    # Old digests have done their job; the ids' tombstones stay (ids are no one).
    conn.execute(sa.update(erased).where(
        erased.c.erased_at < now - datetime.timedelta(days=DIGEST_DAYS),
        erased.c.email_digest.is_not(None)).values(email_digest=None))
    about = [details.c.subject_id == user_id,
             details.c.entry_id.in_(sa.select(entries.c.id).where(entries.c.user_id == user_id))]
    for address in dict.fromkeys(emails):
        about += [sa.func.lower(details.c.description).contains(address, autoescape=True),
                  sa.func.lower(details.c.payload).contains(address, autoescape=True)]
    result = conn.execute(sa.update(details).where(details.c.erased_at.is_(None), sa.or_(*about))
                          .values(erased_at=now, **dict.fromkeys(ERASABLE)))
    return result.rowcount


# The hooks whose arguments name another address of the user's: the one
# they left, and the one they asked for.
ADDRESS_ARGUMENTS = {"vexpenses_email_changed": "old_email",
                     "vexpenses_email_change_requested": "new_email"}


def past_addresses(conn, user_id):
    """The addresses the log knows ``user_id`` had or asked for, lower case."""
    rows = conn.execute(
        sa.select(entries.c.hook, details.c.payload)
        .join(details, details.c.entry_id == entries.c.id)
        .where(entries.c.hook.in_(ADDRESS_ARGUMENTS), details.c.erased_at.is_(None),
               sa.or_(entries.c.user_id == user_id, details.c.subject_id == user_id)))
    found = set()
    for hook, payload in rows:
        try:
            value = json.loads(payload).get(ADDRESS_ARGUMENTS[hook])
        except (TypeError, ValueError, AttributeError):
            continue
        if isinstance(value, str) and "@" in value:
            found.add(value.strip().lower())
    return found


# -- prune --------------------------------------------------------------------


def prune(engine, cutoff, batch_size=1000):
    """Delete the rows created before ``cutoff``, oldest first, ``batch_size`` per transaction.

    Only a prefix of the chain goes: rows up to the first one created at or
    after ``cutoff``. After each batch the anchor moves to the first row
    kept, with the hash of the last row deleted, so the chain verifies from
    there at every moment. Returns ``(rows deleted, id of the first row kept)``.
    """
    def first_batch_bound():
        with engine.begin() as conn:
            head = lock_head(conn)
            newer = conn.scalar(sa.select(sa.func.min(entries.c.id))
                                .where(entries.c.created_at >= cutoff))
            # Rows appended while we prune are newer than the cutoff anyway.
            return head.last_id + 1 if newer is None else newer

    stop = _retrying(first_batch_bound)
    deleted = 0
    while True:
        removed, anchor = _retrying(lambda: _prune_batch(engine, stop, batch_size))
        deleted += removed
        if anchor >= stop:
            return deleted, anchor


def _prune_batch(engine, stop, batch_size):
    with engine.begin() as conn:
        head = lock_head(conn)
        start = head.anchor_id
        upto = min(start + batch_size, stop)
        if upto <= start:
            return 0, start
        last = conn.execute(sa.select(entries.c.id, entries.c.hash)
                            .where(entries.c.id < upto)
                            .order_by(entries.c.id.desc()).limit(1)).first()
        conn.execute(sa.delete(details).where(details.c.entry_id < upto))
        result = conn.execute(sa.delete(entries).where(entries.c.id < upto))
        conn.execute(sa.update(chain).where(chain.c.id == HEAD_ID).values(
            anchor_id=upto,
            anchor_hash=last.hash if last is not None else head.anchor_hash,
            updated_at=utcnow(),
        ))
        return result.rowcount, upto
