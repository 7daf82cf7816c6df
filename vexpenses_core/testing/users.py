"""Users made straight in the database, with a login session and its token."""


def make_user(registry, *, email="ana@example.com", is_admin=False, name="Ana Souza",
              password=None):
    """Insert a user with a login session directly; return (id, access token)."""
    from pyramid.scripting import prepare

    from vexpenses_core.accounts.auth import AuthService
    from vexpenses_core.accounts.interfaces import IPasswordHasher
    from vexpenses_core.models import User

    env = prepare(registry=registry)
    request = env["request"]
    try:
        with request.tm:
            hasher = request.find_service(IPasswordHasher)
            password_hash = hasher.hash(password) if password else None
            user = User(name=name, email=email, is_admin=is_admin, password_hash=password_hash)
            request.dbsession.add(user)
            request.dbsession.flush()
            _, token, _, _ = AuthService(request).start_session(user)
            user_id = user.id
    finally:
        env["closer"]()
    return user_id, token


def bearer(token):
    """The headers that send ``token`` as a bearer access token."""
    return {"Authorization": f"Bearer {token}"}
