"""The accounts API under /api/v1/user, as docs/accounts.md describes it.

Each view validates, calls one service method (which does the work and
fires the hooks) and answers in the envelope.
"""

from ..api import NotFound, failure, json_body, success
from ..paginator import PER_PAGE, Paginator
from ..schemas import query_of, validate
from . import schemas
from .addresses import AddressService
from .auth import AuthService, RefreshReuse
from .deletion import DeletionService
from .export import ExportService
from .reset import PasswordResetService
from .tasks import password_reset
from .users import UserService, encode_cursor, me_dict, user_dict


def register(request):
    body = validate(schemas.Register, json_body(request))
    user = UserService(request).sign_up(body.name, body.email, body.password, body.birth_date)
    AddressService(request).send_verification(user)
    return success(request, "Success on register user", user_dict(user), status=201)


def authenticate(request):
    # Limits count the canonical address, so no spelling of it gets fresh attempts.
    body = validate(schemas.Authenticate, json_body(request))
    user, _, token, expires_in, refresh = AuthService(request).login(body.email, body.password)
    data = schemas.Login(
        token=token, token_type="bearer", expires_in=expires_in, refresh_token=refresh,
        user=schemas.LoginUser.model_validate(user, from_attributes=True)).model_dump()
    return success(request, "Success on login user", data, status=201)


def refresh_with_access_token(request):
    """GET /refresh-token: the original app's refresh, with a valid access token."""
    token, expires_in = AuthService(request).refresh(request.identity)
    data = schemas.Token(token=token, expires_in=expires_in).model_dump(exclude_unset=True)
    return success(request, "Success on refresh user", data, status=201)


def refresh_with_refresh_token(request):
    """POST /refresh-token: rotate an opaque refresh token."""
    body = validate(schemas.RefreshToken, json_body(request))
    result = AuthService(request).rotate(body.refresh_token)
    if isinstance(result, RefreshReuse):
        # Returned, not raised: the session's revocation must be committed.
        return failure(request, 401, "Unauthenticated.",
                       "This refresh token was already used; the session has been ended.")
    _, _, token, expires_in, refresh = result
    data = schemas.Token(token=token, token_type="bearer", expires_in=expires_in,
                         refresh_token=refresh).model_dump()
    return success(request, "Success on refresh user", data, status=201)


def logout(request):
    AuthService(request).logout(request.identity)
    return success(request, "Success on logout user", None, status=201)


def logout_all(request):
    count = AuthService(request).logout_all(request.identity)
    return success(request, "Success on logout user from every session",
                   schemas.SessionsEnded(sessions_ended=count).model_dump(), status=201)


def list_sessions(request):
    auth = AuthService(request)
    current = auth.current_session_id()
    data = [schemas.Session(id=s.id, created_at=s.created_at, last_used_at=s.last_used_at,
                            expires_at=s.expires_at, ip_address=s.ip_address,
                            user_agent=s.user_agent, current=s.id == current).model_dump()
            for s in auth.active_sessions(request.identity)]
    return success(request, "Success on get sessions", data)


def revoke_session(request):
    session_id = request.matchdict["session_id"]
    if AuthService(request).end_session(request.identity, session_id) is None:
        raise NotFound()
    return success(request, "Success on revoke session", None)


FORGOT_MESSAGE = "Password reset link sent successfully"


def forgot_password(request):
    email = validate(schemas.ForgotPassword, json_body(request)).email
    PasswordResetService(request).limit_requests(email)
    # Known or not, the same task is queued and the same answer given at
    # once: neither the message nor the time tells whether it has an account.
    request.enqueue(password_reset, email)
    return success(request, FORGOT_MESSAGE, None)


def recover_password(request):
    link = query_of(request, schemas.RecoverLink).model_dump(exclude_unset=True)
    body = validate(schemas.RecoverPassword, {**link, **json_body(request)})
    PasswordResetService(request).complete(body.email, body.token, body.password)
    return success(request, "Password reset successfully", None)


def me(request):
    user = UserService(request).profile(request.identity)
    return success(request, "Success on get user", me_dict(user))


def update_me(request):
    changes = schemas.UpdateProfile.changes(json_body(request))
    user = UserService(request).update_profile(request.identity, changes)
    return success(request, "Success on update user", me_dict(user))


def change_password(request):
    body = validate(schemas.ChangePassword, json_body(request))
    AuthService(request).change_password(request.identity, body.current_password, body.password)
    return success(request, "Password changed successfully", None)


def delete_me(request):
    """DELETE /me: the account and everything held about the person (LGPD right to erasure)."""
    body = validate(schemas.DeleteAccount, json_body(request))
    DeletionService(request).delete_own(request.identity, body.current_password)
    return success(request, "Account deleted", None)


def export_me(request):
    """GET /me/export: the envelope; with ?download=true the same JSON as a file."""
    query = query_of(request, schemas.ExportQuery)
    exports = ExportService(request)
    exports.limit(request.identity)
    data = schemas.Export.model_validate(exports.export(request.identity)).model_dump()
    response = request.response
    response.headers["Cache-Control"] = "no-store"
    if query.download:
        response.headers["Content-Disposition"] = (
            f'attachment; filename="vexpenses-export-{request.identity.id}.json"')
    return success(request, "Success on export user", data)


def list_users(request):
    query = query_of(request, schemas.UserList)
    filters = {"name": query.name, "email": query.email}
    users = UserService(request)
    if query.cursor is not None:
        items, _ = users.search(request.identity, filters, after=query.cursor)
        data = _cursor_page(request, items, filters)
    else:
        items, total = users.search(request.identity, filters, page=query.page)
        data = Paginator(request, [user_dict(u) for u in items], total, query.page,
                         filters=filters).to_dict()
    return success(request, "Success on get users", data)


def _cursor_page(request, items, filters):
    """Laravel's CursorPaginator shape: data, next_cursor, next_page_url, ..."""
    more = len(items) > PER_PAGE
    items = items[: PER_PAGE]
    next_cursor = encode_cursor(items[-1].id) if more else None
    paginator = Paginator(request, [], 0, 1, filters=filters)
    return schemas.CursorPage(
        data=[schemas.User.model_validate(u, from_attributes=True) for u in items],
        path=paginator.path,
        per_page=PER_PAGE,
        next_cursor=next_cursor,
        next_page_url=paginator.url_with(cursor=next_cursor) if next_cursor else None,
    ).model_dump()


ROUTES = [
    # name, path, (method, view, permission)...
    ("register", "/register", [("POST", register, None)]),
    ("authenticate", "/authenticate", [("POST", authenticate, None)]),
    ("refresh", "/refresh-token", [("GET", refresh_with_access_token, "authenticated"),
                                   ("POST", refresh_with_refresh_token, None)]),
    ("logout", "/logout", [("GET", logout, "authenticated"), ("POST", logout, "authenticated")]),
    ("logout_all", "/logout-all", [("POST", logout_all, "authenticated")]),
    ("sessions", "/sessions", [("GET", list_sessions, "authenticated")]),
    ("session", "/sessions/{session_id}", [("DELETE", revoke_session, "authenticated")]),
    ("forgot", "/forgot-password", [("POST", forgot_password, None)]),
    ("recover", "/recover-password", [("POST", recover_password, None)]),
    ("me", "/me", [("GET", me, "authenticated"), ("PATCH", update_me, "authenticated"),
                   ("DELETE", delete_me, "authenticated")]),
    ("me_password", "/me/password", [("POST", change_password, "authenticated")]),
    ("me_export", "/me/export", [("GET", export_me, "authenticated")]),
    ("list", "", [("GET", list_users, "authenticated")]),
    ("list_slash", "/", [("GET", list_users, "authenticated")]),
]


# The routes anyone may call take a few short fields. The most an honest
# client sends is about 31 KB: register with a 1,024-character password and
# its confirmation in 4-byte characters, written as JSON escapes (12 bytes
# each). Anything larger is refused before it is read (vexpenses_core.server).
SMALL_BODY_BYTES = 64 * 1024
SMALL_BODIES = (register, authenticate, refresh_with_refresh_token, forgot_password,
                recover_password)


def includeme(config):
    settings = config.get_settings()
    legacy_get_refresh = settings["vexpenses.legacy_get_refresh"]
    small = min(SMALL_BODY_BYTES, settings["vexpenses.max_body_bytes"])
    for name, path, views in ROUTES:
        route_name = f"accounts.{name}"
        config.add_route(route_name, f"/api/v1/user{path}")
        for method, view, permission in views:
            if view is refresh_with_access_token and not legacy_get_refresh:
                continue  # GET then answers 405 with Allow: POST
            config.add_view(view, route_name=route_name, request_method=method,
                            permission=permission, renderer="json",
                            max_body_bytes=small if view in SMALL_BODIES else None)
