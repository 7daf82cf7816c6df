"""The identity behind an access token, cached in Redis.

Checking a token's login session on every request costs a database round
trip, which was most of the time of a cheap authenticated request like
``/me``. The cache keeps, per user, one hash: a field per login session
(``sid``) holding the user's public columns and the session's expiry, and a
``gen`` field that changes whenever the user is forgotten.

Forgetting is driven by the database session, so that no service has to
remember to do it: after a transaction that changed a user or one of their
login sessions commits (an ORM flush, or a bulk UPDATE or DELETE on
``users`` or ``auth_sessions``), the users it touched are forgotten. A bulk
statement on those tables should say whose rows it changes with the execution
option ``vexpenses_users=[ids]``; without it every cached identity is
forgotten, which is correct, only slower.

The users are forgotten twice. Before the commit, strictly: if Redis cannot
confirm it (through Sentinel: until a replica has it, so that a failover
cannot bring the entry back), the commit does not happen and the request
answers 503. A logout that says it succeeded has ended the session on every
host. After the commit, again, at best effort: a request that read the old
row between the two loads from the database and writes back only if ``gen``
did not change meanwhile, so it can't leave the revoked session cached.
Entries live ``vexpenses.identity_cache_seconds`` at most (0 turns the cache
off); if Redis fails, requests fall back to the database.

Each process also keeps what Redis answered for a very short time,
``vexpenses.identity_cache_local_ms`` (100 ms), counted from before it
asked: a busy token then costs one Redis round trip per process per 100 ms,
not one per request. A transaction that forgot users does not answer until
that long after Redis confirmed the forget: by then every copy read before
the forget has expired in every process, and one read after it has nothing
to copy. So a logout that answered has still ended the session everywhere.

Without a real Redis (the embedded default) the cache is off: an in-memory
one would not see a change made by another process, such as
``vexpenses create-admin``.
"""

import datetime
import json
import logging
import time
import uuid

import redis
from sqlalchemy import event, inspect
from sqlalchemy.orm import configure_mappers, make_transient_to_detached
from sqlalchemy.orm.base import manager_of_class

from .hashreads import reader_for
from .models import AuthSession, User
from .redis_client import redis_key, write_replicated

log = logging.getLogger(__name__)

# Every column of users except the password hash, which never leaves the database.
FIELDS = ("id", "name", "email", "birth_date", "is_admin", "email_verified_at", "disabled_at",
          "created_at", "updated_at")
TIMES = ("email_verified_at", "disabled_at", "created_at", "updated_at")
MANAGER = manager_of_class(User)
TABLES = (User.__tablename__, AuthSession.__tablename__)
STALE = "vexpenses.stale_users"
FORGOTTEN_AT = "vexpenses.users_forgotten_at"
EVERYONE = "*"


class IdentityCache:
    # Redis is asked on every request (that is what makes a logout count at
    # once); decoding its answer need not be redone: an entry's text holds
    # the same user until it changes, so the decoded fields are remembered.
    DECODED_MAX = 4096
    LOCAL_MAX = 4096

    def __init__(self, redis_client, prefix, ttl, local_seconds=0):
        self.redis = redis_client
        # The read on every request skips redis-py's per-command cost where it can.
        self.reader = reader_for(redis_client) or redis_client
        self.prefix = prefix  # key prefix, ends with ":"
        self.ttl = ttl
        self.decoded = {}  # entry text -> (session expiry, user fields or None)
        self.local_seconds = local_seconds if ttl else 0
        self.local = {}  # (key, session id) -> (good until, entry text, gen)

    def key(self, user_id):
        return f"{self.prefix}{user_id}"

    def get(self, user_id, session_id):
        """``(user or None, gen)``: a detached :class:`User` on a hit."""
        if not self.ttl:
            return None, None
        key = self.key(user_id)
        asked = time.monotonic()
        copy = self.local.get((key, session_id))
        if copy is not None and asked < copy[0]:
            _, raw, gen = copy
        else:
            try:
                raw, gen = self.reader.hmget(key, session_id, "gen")
            except redis.RedisError:
                log.warning("identity cache unavailable; reading the database", exc_info=True)
                return None, None
            if raw is None:
                return None, gen
            if self.local_seconds:
                if len(self.local) >= self.LOCAL_MAX:
                    self.local.clear()
                # Good until counted from before the question: see wait_out().
                self.local[key, session_id] = (asked + self.local_seconds, raw, gen)
        found = self.decoded.get(raw)
        if found is None:
            data = json.loads(raw)
            found = (data["expires"], _fields_from(data))
            if len(self.decoded) >= self.DECODED_MAX:
                self.decoded.clear()  # crude, but lock-free and bounded
            self.decoded[raw] = found
        expires, values = found
        if expires <= datetime.datetime.now(datetime.UTC).timestamp():
            return None, gen  # the login session ended; the database says how
        return (None if values is None else _user_with(values)), gen

    def put(self, user, session_expires_at, session_id, gen):
        """Cache ``user`` for ``session_id`` unless the user was forgotten since ``gen``."""
        if not self.ttl:
            return
        key = self.key(user.id)
        value = json.dumps({**_user_fields(user), "expires": session_expires_at.timestamp()})
        try:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.watch(key)
                if pipe.hget(key, "gen") != gen:
                    return
                pipe.multi()
                pipe.hset(key, session_id, value)
                pipe.expire(key, self.ttl)
                pipe.execute()
        except redis.WatchError:
            pass  # forgotten meanwhile: the next request reads the database
        except redis.RedisError:
            log.warning("identity cache unavailable; not caching", exc_info=True)

    def forget(self, user_ids, strict=False):
        """Drop the cached identities of ``user_ids`` (or of everyone, for ``EVERYONE``).

        ``strict``: raise when Redis (through Sentinel, a replica) did not
        confirm it; otherwise log the error, and the entries expire within the ttl.
        """
        if not self.ttl or not user_ids:
            return
        self.local.clear()  # this process's copies; the others' expire (wait_out)
        try:
            if EVERYONE in user_ids:
                keys = list(self.redis.scan_iter(f"{self.prefix}*", count=1000))
            else:
                keys = [self.key(user_id) for user_id in user_ids]
            if keys:
                # One script, so that no fill lands between the delete and the
                # new gen, which makes a request that read the old row before
                # this commit drop what it read instead of caching it.
                write_replicated(self.redis, lambda pipe: pipe.eval(
                    FORGET_SCRIPT, len(keys), *keys, uuid.uuid4().hex, self.ttl))
        except redis.RedisError:
            if strict:
                raise
            log.error("could not forget cached identities of users %s; they expire within "
                      "%d s", sorted(map(str, user_ids)), self.ttl, exc_info=True)

    def wait_out(self, forgotten_at):
        """Sleep until every process's copy read before ``forgotten_at`` has expired.

        ``forgotten_at`` is when Redis confirmed a forget (``time.monotonic()``);
        a copy is good for ``local_seconds`` from before it was asked for.
        """
        remaining = forgotten_at + self.local_seconds - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)


FORGET_SCRIPT = """
for _, key in ipairs(KEYS) do
    redis.call('DEL', key)
    redis.call('HSET', key, 'gen', ARGV[1])
    redis.call('EXPIRE', key, ARGV[2])
end
"""


def _user_fields(user):
    data = {name: getattr(user, name) for name in FIELDS}
    for name in ("birth_date", *TIMES):
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return data


def _fields_from(data):
    """The user's column values in a cached entry; None for an entry cached by an
    older version (a field missing)."""
    try:
        values = {name: data[name] for name in FIELDS}
    except KeyError:
        return None
    if values["birth_date"] is not None:
        values["birth_date"] = datetime.date.fromisoformat(values["birth_date"])
    for name in TIMES:
        if values[name] is not None:
            values[name] = datetime.datetime.fromisoformat(values[name])
    return values


def _user_with(values):
    """A detached :class:`User` with ``values`` (copied: the user may change its own)."""
    # As if loaded by a query (and cheaper than User(**values)): the password
    # hash loads on first access once the user joins a database session.
    if not User.__mapper__.configured:  # new_instance() skips what User() would do
        configure_mappers()
    user = MANAGER.new_instance()
    user.__dict__.update(values)
    make_transient_to_detached(user)
    return user


def attach(request, user):
    """Put a cached ``user`` into the request's database session, now or when it is made.

    Returns the user to use: the session's own copy if it already loaded one.
    """
    if "dbsession" not in request.__dict__:
        request.__dict__.setdefault("vexpenses.attach", []).append(user)
        return user
    session = request.dbsession
    loaded = session.identity_map.get(inspect(user).key)
    if loaded is not None:
        return loaded
    session.add(user)
    return user


# -- forgetting, driven by the database session --------------------------------


def _mark(session, user_ids):
    session.info.setdefault(STALE, set()).update(user_ids)


def _after_flush(session, flush_context):
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, User):
            _mark(session, [obj.id])
        elif isinstance(obj, AuthSession):
            _mark(session, [obj.user_id])


def _do_orm_execute(state):
    if not (state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in TABLES:
        return
    _mark(session=state.session,
          user_ids=state.execution_options.get("vexpenses_users", [EVERYONE]))


def listen(session_factory, cache):
    """Forget the users a transaction changed, before it commits and after."""
    event.listen(session_factory, "after_flush", _after_flush)
    event.listen(session_factory, "do_orm_execute", _do_orm_execute)

    def before_commit(session):
        if session.in_nested_transaction():
            return
        session.flush()  # changes not flushed yet mark their users too
        if session.info.get(STALE):
            cache.forget(session.info[STALE], strict=True)  # raises: no commit
            session.info[FORGOTTEN_AT] = time.monotonic()

    def after_commit(session):
        # A savepoint's release fires this too; forget at the real commit.
        # Marks left by a rollback are kept: forgetting too much only costs a miss.
        if not session.in_nested_transaction():
            cache.forget(session.info.pop(STALE, ()))
            forgotten_at = session.info.pop(FORGOTTEN_AT, None)
            if forgotten_at is not None:
                cache.wait_out(forgotten_at)  # then the change is seen everywhere

    event.listen(session_factory, "before_commit", before_commit)
    event.listen(session_factory, "after_commit", after_commit)


def includeme(config):
    registry = config.registry
    if getattr(registry, "identity_cache", None) is not None:
        return
    settings = registry.settings
    ttl = settings["vexpenses.identity_cache_seconds"] if settings["vexpenses.redis_url"] else 0
    registry.identity_cache = IdentityCache(
        registry.redis, redis_key(registry, "identity", ""), ttl,
        local_seconds=settings["vexpenses.identity_cache_local_ms"] / 1000)
    listen(registry.dbsession_factory, registry.identity_cache)
