"""The account's address under /api/v1/user: verification and e-mail change.

As in views.py, each view validates, calls one service method (which does
the work and fires the hooks) and answers in the envelope.
"""

from ..api import APIError, ValidationError, json_body, success
from ..schemas import validate
from . import schemas
from .addresses import AddressService
from .tasks import verification
from .users import me_dict
from .views import SMALL_BODY_BYTES


def change_email(request):
    body = validate(schemas.ChangeEmail, json_body(request))
    AddressService(request).request_change(request.identity, body.email, body.current_password)
    return success(request, "Confirmation sent to the new address", None, status=202)


def confirm_email(request):
    token = validate(schemas.LinkToken, json_body(request)).token
    user = AddressService(request).confirm(token)
    return success(request, "Email confirmed successfully", me_dict(user))


def verify_email(request):
    token = validate(schemas.LinkToken, json_body(request)).token
    AddressService(request).verify(token)
    return success(request, "Email verified successfully", None)


RESEND_MESSAGE = "Verification e-mail sent"
EMAIL_REQUIRED = "The email field is required."


def resend_verification(request):
    """With a login, a new link for that user; without one (a user who may not
    log in before verifying), for the body's ``email``, as forgot-password does."""
    addresses = AddressService(request)
    user = request.identity
    if user is None and "Authorization" in request.headers:
        raise APIError(status=401)  # a token was sent, and it is not a live one
    email = validate(schemas.ResendVerification, json_body(request)).email
    if user is not None:
        addresses.resend(user)
        return success(request, RESEND_MESSAGE, None, status=202)
    if email is None:
        raise ValidationError({"email": [EMAIL_REQUIRED]})
    addresses.limit_anonymous_resend(email)
    # Known or not, the same task is queued and the same answer given at once.
    request.enqueue(verification, email)
    return success(request, RESEND_MESSAGE, None, status=202)


ROUTES = [
    # name, path, (method, view, permission)...
    ("me_email", "/me/email", [("POST", change_email, "authenticated")]),
    ("confirm_email", "/confirm-email", [("POST", confirm_email, None)]),
    ("verify_email", "/verify-email", [("POST", verify_email, None)]),
    ("verify_resend", "/verify-email/resend", [("POST", resend_verification, None)]),
]

# Anyone may call these: a token or an address, nothing larger (see views.py).
SMALL_BODIES = (confirm_email, verify_email, resend_verification)


def includeme(config):
    small = min(SMALL_BODY_BYTES, config.get_settings()["vexpenses.max_body_bytes"])
    for name, path, views in ROUTES:
        route_name = f"accounts.{name}"
        config.add_route(route_name, f"/api/v1/user{path}")
        for method, view, permission in views:
            config.add_view(view, route_name=route_name, request_method=method,
                            permission=permission, renderer="json",
                            max_body_bytes=small if view in SMALL_BODIES else None)
