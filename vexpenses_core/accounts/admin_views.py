"""Admins managing users under /api/v1/user/{id}, as docs/accounts.md describes it.

Admins only (the ``admin`` permission), except that a user may GET their
own id. The ids are digits only (``{id:\\d{1,19}}``), so these routes never
shadow ``/me``, ``/sessions`` and the other named paths.
"""

from ..api import APIError, json_body, success
from . import schemas
from .admin import AdminService
from .deletion import DeletionService
from .users import admin_dict, me_dict


def _user(request):
    return AdminService(request).get(int(request.matchdict["id"]))


def get_user(request):
    """An admin sees anyone, with the admin fields; a user sees only themselves, as /me."""
    user_id = int(request.matchdict["id"])
    is_admin = request.has_permission("admin")
    if not is_admin and user_id != request.identity.id:
        # The same answer whether the id exists or not: no probing for accounts.
        raise APIError(status=403)
    user = AdminService(request).view(user_id)
    return success(request, "Success on get user", admin_dict(user) if is_admin else me_dict(user))


def update_user(request):
    user = _user(request)
    changes = schemas.UpdateUser.changes(json_body(request))
    user = AdminService(request).update(user, changes)
    return success(request, "Success on update user", admin_dict(user))


def logout_user(request):
    ended = AdminService(request).end_sessions(_user(request))
    return success(request, "Sessions ended",
                   schemas.SessionsEnded(sessions_ended=ended).model_dump())


def delete_user(request):
    DeletionService(request).delete(_user(request), by_admin=True)
    return success(request, "Account deleted", None)


ROUTES = [
    # name, path, (method, view, permission)...
    # At most 19 digits: BIGINT's range, and no 5,000-digit string for int() to refuse.
    ("user", r"/{id:\d{1,19}}", [("GET", get_user, "authenticated"),
                            ("PATCH", update_user, "admin"),
                            ("DELETE", delete_user, "admin")]),
    ("user_logout_all", r"/{id:\d{1,19}}/logout-all", [("POST", logout_user, "admin")]),
]


def includeme(config):
    for name, path, views in ROUTES:
        route_name = f"accounts.{name}"
        config.add_route(route_name, f"/api/v1/user{path}")
        for method, view, permission in views:
            config.add_view(view, route_name=route_name, request_method=method,
                            permission=permission, renderer="json")
