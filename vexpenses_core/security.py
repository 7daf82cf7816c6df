"""Pyramid 2 security policy over JWT access tokens.

pyramid-jwt's ``JWTAuthenticationPolicy`` is used only as the token engine
(``create_token`` and ``get_claims``); its own config directive calls the
deprecated auth-policy API, so the policy here is a plain ``ISecurityPolicy``.

An access token is accepted only when its signature and expiry are good,
its ``typ`` is ``access``, and its login session (``sid``) is neither
revoked nor expired, and its user still exists and is not disabled. That check reads the
identity cache (vexpenses_core.identity) first and the database on a miss.
"""

import datetime
import pathlib
import time
import uuid

import jwt
from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid_jwt import JWTAuthenticationPolicy
from sqlalchemy import select

from . import identity
from .db import utcnow
from .models import AuthSession, User
from .settings import ConfigurationError

ADMIN = "role:admin"


def session_limit(settings, created_at):
    """The absolute end of a login that began at ``created_at``."""
    return created_at + datetime.timedelta(days=settings["vexpenses.session_max_days"])


def oldest_live_login(settings):
    """Sessions created at or before this have reached their absolute limit."""
    return utcnow() - datetime.timedelta(days=settings["vexpenses.session_max_days"])


class Root:
    """Default context: what each principal may do on every route."""

    __acl__ = [
        (Allow, ADMIN, ("admin", "authenticated")),
        (Allow, Authenticated, "authenticated"),
    ]

    def __init__(self, request):
        self.request = request


class JWTSecurityPolicy:
    # Verifying a JWT costs more than the rest of a cheap request. A token
    # string that verified once carries the same claims for its whole life,
    # so remember the claims (checking ``exp`` on every use).
    VERIFIED_MAX = 4096

    def __init__(self, engine):
        self.engine = engine
        self.acl = ACLHelper()
        self.verified = {}  # token -> claims

    def identity(self, request):
        """The :class:`User` behind a valid access token, or ``None``.

        Kept on the request, not the environ: a retried request gets a new
        database session, and its user must belong to that one.
        """
        try:
            return request.__dict__["vexpenses.identity"]
        except KeyError:
            user = request.__dict__["vexpenses.identity"] = self._load_identity(request)
            return user

    def claims(self, request):
        """The verified claims of the request's access token ({} when none)."""
        try:
            scheme, token = request.authorization or ("", "")
        except ValueError:  # a malformed Authorization header
            return {}
        # Schemes are case-insensitive (RFC 9110): "bearer" is "Bearer".
        if (scheme.lower() != self.engine.auth_type.lower() or not isinstance(token, str)
                or not token):
            return {}
        claims = self.verified.get(token)
        if claims is not None and claims["exp"] > time.time():
            return claims
        claims = self.engine.jwt_decode(request, token)
        if (
            claims.get("typ") != "access"
            or not isinstance(claims.get("sid"), str)
            or not isinstance(claims.get("exp"), (int, float))
        ):
            return {}
        if len(self.verified) >= self.VERIFIED_MAX:
            self.verified.clear()  # crude, but lock-free and bounded
        self.verified[token] = claims
        return claims

    def _load_identity(self, request):
        claims = self.claims(request)
        if not claims:
            return None
        try:
            user_id = int(claims["sub"])
        except (TypeError, ValueError, KeyError):
            return None
        session_id = claims["sid"]
        cache = request.registry.identity_cache
        user, gen = cache.get(user_id, session_id)
        if user is not None:
            # Disabling forgets the cache at its commit; an entry that still
            # says disabled (cached by an older reader) is no identity either.
            return None if user.disabled_at is not None else identity.attach(request, user)
        settings = request.registry.settings
        row = request.dbsession.execute(
            select(User, AuthSession.expires_at, AuthSession.created_at)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                User.id == user_id,
                User.disabled_at.is_(None),  # disabling revokes the sessions too
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > utcnow(),
                AuthSession.created_at > oldest_live_login(settings),
            )
        ).first()
        if row is None:
            return None
        user, expires_at, created_at = row
        # The cache drops the entry at the session's end, absolute limit included.
        cache.put(user, min(expires_at, session_limit(settings, created_at)), session_id, gen)
        return user

    def authenticated_userid(self, request):
        user = self.identity(request)
        return None if user is None else user.id

    def principals(self, request):
        user = self.identity(request)
        if user is None:
            return [Everyone]
        principals = [Everyone, Authenticated, f"user:{user.id}"]
        if user.is_admin:
            principals.append(ADMIN)
        return principals

    def permits(self, request, context, permission):
        return self.acl.permits(context, self.principals(request), permission)

    def remember(self, request, userid, **kw):
        return []  # tokens travel in the Authorization header, not cookies

    def forget(self, request, **kw):
        return []

    def create_access_token(self, user_id, session_id, max_seconds=None, **claims):
        """Return ``(token, expires_in seconds)`` for a login session.

        ``max_seconds`` (1 or more) shortens the token's life below the
        configured one, so that it does not outlive its session.
        """
        claims.setdefault("jti", uuid.uuid4().hex)
        seconds = int(self.engine.expiration.total_seconds())
        if max_seconds is not None:
            seconds = min(seconds, max_seconds)
        token = self.engine.create_token(str(user_id), expiration=seconds, typ="access",
                                         sid=session_id, **claims)
        return token, seconds


def make_jwt_engine(settings):
    algorithm = settings["vexpenses.jwt_algorithm"]
    if algorithm == "HS256":
        private_key = public_key = settings["vexpenses.jwt_secret"]
    else:
        private_key = _read_key(settings, "vexpenses.jwt_private_key_file")
        public_key = _read_key(settings, "vexpenses.jwt_public_key_file")
    return JWTAuthenticationPolicy(
        private_key=private_key,
        public_key=public_key,
        algorithm=algorithm,
        expiration=datetime.timedelta(seconds=settings["vexpenses.access_token_seconds"]),
        auth_type="Bearer",
    )


def _read_key(settings, name):
    path = pathlib.Path(settings[name])
    try:
        return path.read_text()
    except OSError as exc:
        raise ConfigurationError(f"{name}: cannot read {path}: {exc.strerror}") from None


def check_keys(engine):
    """Sign and verify one token now, so that a key that does not fit its
    algorithm stops start-up instead of failing every login."""
    try:
        token = engine.create_token("0", typ="check")
        jwt.decode(token, engine.public_key, algorithms=[engine.algorithm])
    except Exception as exc:
        raise ConfigurationError(
            f"the JWT keys do not work with vexpenses.jwt_algorithm = {engine.algorithm}: {exc}"
        ) from None


def includeme(config):
    """Install the JWT security policy and the default ACL root."""
    engine = make_jwt_engine(config.get_settings())
    check_keys(engine)
    policy = JWTSecurityPolicy(engine)
    config.registry.security = policy
    config.set_security_policy(policy)
    config.set_root_factory(Root)
