"""Pyramid 2 security policy over JWT access tokens.

pyramid-jwt's ``JWTAuthenticationPolicy`` is used only as the token engine
(``create_token`` and ``get_claims``); its own config directive calls the
deprecated auth-policy API, so the policy here is a plain ``ISecurityPolicy``.
"""

import uuid

from pyramid.authorization import ACLHelper, Allow, Authenticated, Everyone
from pyramid_jwt import JWTAuthenticationPolicy

from .models import User

ADMIN = "role:admin"


class Root:
    """Default context: what each principal may do on every route."""

    __acl__ = [
        (Allow, ADMIN, ("admin", "authenticated")),
        (Allow, Authenticated, "authenticated"),
    ]

    def __init__(self, request):
        self.request = request


class JWTSecurityPolicy:
    def __init__(self, engine):
        self.engine = engine
        self.acl = ACLHelper()

    def identity(self, request):
        """The :class:`User` behind a valid access token, or ``None``."""
        if "vexpenses.identity" not in request.environ:
            request.environ["vexpenses.identity"] = self._load_identity(request)
        return request.environ["vexpenses.identity"]

    def _load_identity(self, request):
        claims = self.engine.get_claims(request)
        if claims.get("typ") != "access":
            return None
        try:
            user_id = int(claims.get("sub"))
        except (TypeError, ValueError):
            return None
        return request.dbsession.get(User, user_id)

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

    def create_access_token(self, user_id, **claims):
        claims.setdefault("jti", uuid.uuid4().hex)
        return self.engine.create_token(str(user_id), typ="access", **claims)


def includeme(config):
    """Install the JWT security policy and the default ACL root."""
    settings = config.get_settings()
    engine = JWTAuthenticationPolicy(
        private_key=settings["vexpenses.jwt_secret"],
        algorithm="HS256",
        expiration=settings["vexpenses.access_token_seconds"],
        auth_type="Bearer",
    )
    config.set_security_policy(JWTSecurityPolicy(engine))
    config.set_root_factory(Root)
