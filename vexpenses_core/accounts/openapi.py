"""The accounts routes in the OpenAPI document, from the models of accounts/schemas.py."""

import functools
from typing import Literal

from pydantic import create_model

from ..openapi import (
    Paginator,
    Success,
    body_refused,
    envelope,
    error_response,
    limited_response,
    parameters,
    request_body,
    response,
)
from . import schemas

SECURED = [{"bearer": []}]


def operation(spec, summary, status, message, secured=False, request=None, params=None,
              errors=(), data=None, name=None):
    """``request`` is the body's model; ``data`` the type of the envelope's data.

    The envelope's schema is named after the message, or ``name`` when
    another route gives the same message with other data.
    """
    if name is None:
        responses = {str(status): envelope(spec, message, data)}
    else:
        responses = {str(status): response(spec, message, named_success(name, message, data))}
    if secured:
        responses["401"] = error_response("Missing, invalid, expired or revoked token")
    if request:
        responses.update(body_refused())
    for code, text in errors:
        responses[code] = limited_response(text) if code == "429" else error_response(text)
    op = {"summary": summary, "tags": ["accounts"], "responses": responses}
    if secured:
        op["security"] = SECURED
    if request:
        op["requestBody"] = request_body(spec, request)
    if params:
        op["parameters"] = params
    return op


def add_paths(spec):
    p = spec["paths"]
    invalid = ("422", "Validation failed")
    limited = ("429", "Too many attempts; see Retry-After")
    p["/api/v1/user/register"] = {"post": operation(
        spec, "Register", 201, "Success on register user", request=schemas.Register,
        errors=[invalid, limited], data=schemas.User)}
    p["/api/v1/user/authenticate"] = {"post": operation(
        spec, "Log in: access token, refresh token and user", 201, "Success on login user",
        request=schemas.Authenticate, errors=[("401", "Bad credentials"), invalid, limited],
        data=schemas.Login)}
    legacy_get = operation(spec, "New access token for the current session", 201,
                           "Success on refresh user", secured=True, data=schemas.Token,
                           errors=[("405", "Turned off: vexpenses.legacy_get_refresh")])
    legacy_get["deprecated"] = True
    legacy_get["description"] = (
        "The original app's refresh: re-signs an access token with nothing but that token. "
        "Never past the login's absolute lifetime (vexpenses.session_max_days). Answers 405 "
        "with Allow: POST when vexpenses.legacy_get_refresh is false; use POST instead.")
    p["/api/v1/user/refresh-token"] = {
        "get": legacy_get,
        "post": operation(spec, "Rotate a refresh token; reuse ends the session", 201,
                          "Success on refresh user", request=schemas.RefreshToken,
                          errors=[("401", "Invalid, expired or reused refresh token")],
                          data=schemas.Token),
    }
    logout = operation(spec, "End the current session", 201, "Success on logout user",
                       secured=True)
    p["/api/v1/user/logout"] = {"get": logout, "post": logout}
    p["/api/v1/user/logout-all"] = {"post": operation(
        spec, "End every session of the user", 201,
        "Success on logout user from every session", secured=True,
        data=schemas.SessionsEnded)}
    p["/api/v1/user/sessions"] = {"get": operation(
        spec, "The user's active sessions", 200, "Success on get sessions", secured=True,
        data=list[schemas.Session])}
    p["/api/v1/user/sessions/{session_id}"] = {"delete": operation(
        spec, "End one session", 200, "Success on revoke session", secured=True,
        params=[{"name": "session_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}],
        errors=[("404", "No such session of this user")])}
    p["/api/v1/user/forgot-password"] = {"post": operation(
        spec, "E-mail a password reset link (same answer for unknown e-mails)", 200,
        "Password reset link sent successfully", request=schemas.ForgotPassword,
        errors=[invalid, limited])}
    p["/api/v1/user/recover-password"] = {"post": operation(
        spec, "Set a new password with a reset token; ends every session", 200,
        "Password reset successfully", request=schemas.RecoverPassword,
        params=parameters(spec, schemas.RecoverLink), errors=[invalid])}
    p["/api/v1/user/me"] = {
        "get": operation(spec, "The current user", 200, "Success on get user", secured=True,
                         data=schemas.Me),
        "patch": operation(spec, "Change any of the user's name and birth date", 200,
                           "Success on update user", secured=True,
                           request=schemas.UpdateProfile, errors=[invalid],
                           data=schemas.Me),
    }
    p["/api/v1/user/me/password"] = {"post": operation(
        spec, "Change the password, proving the current one; ends the other sessions", 200,
        "Password changed successfully", secured=True, request=schemas.ChangePassword,
        errors=[invalid, limited])}
    export = operation(
        spec, "Everything held about the user (LGPD right of access)", 200,
        "Success on export user", secured=True, params=parameters(spec, schemas.ExportQuery),
        errors=[invalid, limited], data=schemas.Export)
    export["description"] = (
        "Never cached (Cache-Control: no-store). With download=true the same JSON comes "
        "with Content-Disposition: attachment; filename=\"vexpenses-export-<id>.json\". "
        "Rate-limited per user: vexpenses.ratelimit.export.")
    p["/api/v1/user/me/export"] = {"get": export}
    # Laravel's LengthAwarePaginator; with ?cursor= its CursorPaginator.
    p["/api/v1/user"] = {"get": operation(
        spec, "List users, 10 per page", 200, "Success on get users", secured=True,
        params=parameters(spec, schemas.UserList),
        errors=[invalid], data=Paginator[schemas.User] | schemas.CursorPage)}
    add_admin_paths(spec)
    add_address_paths(spec)


@functools.cache
def named_success(name, message, data):
    """The success envelope of ``message`` with ``data``, published as ``name``."""
    return create_model(name, __base__=Success, message=(Literal[message], ...),
                        data=(data, ...))


USER_ID = [{"name": "id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1},
            "description": "the user's id; an unknown one is a 404"}]


def add_admin_paths(spec):
    """DELETE /me, and the admins' routes under /api/v1/user/{id} (accounts/admin_views.py)."""
    p = spec["paths"]
    invalid = ("422", "Validation failed")
    not_admin = ("403", "Not an admin")
    unknown = ("404", "No user with this id")
    delete_me = operation(
        spec, "Delete the account and everything held about the person (LGPD right to "
        "erasure)", 200, "Account deleted", secured=True, request=schemas.DeleteAccount,
        errors=[invalid, ("429", "Too many attempts; see Retry-After")])
    delete_me["description"] = (
        "Proves current_password, which counts towards the login limits. The last enabled "
        "admin cannot delete themselves: a 422 on user.")
    p["/api/v1/user/me"]["delete"] = delete_me
    get = operation(spec, "A user by id: admins see anyone, a user only themselves", 200,
                    "Success on get user", secured=True, params=USER_ID,
                    errors=[("403", "Not an admin, and not the user's own id"), unknown],
                    data=schemas.AdminUser | schemas.Me, name="SuccessOnGetUserById")
    get["description"] = (
        "An admin gets the admin fields (is_admin, disabled_at); a user asking for their "
        "own id gets what GET /me gives.")
    patch = operation(spec, "Change a user: name, birth date, admin, disabled (admins)", 200,
                      "Success on update user", secured=True, params=USER_ID,
                      request=schemas.UpdateUser, errors=[not_admin, unknown, invalid],
                      data=schemas.AdminUser, name="SuccessOnUpdateUserById")
    patch["description"] = (
        "Disabling ends every session of the user at once; they cannot log in or reset "
        "their password until enabled again. Demoting or disabling the last enabled admin "
        "is a 422.")
    delete = operation(spec, "Delete a user's account and their data (admins)", 200,
                       "Account deleted", secured=True, params=USER_ID,
                       errors=[not_admin, unknown, invalid])
    delete["description"] = "Deleting the last enabled admin is a 422 on user."
    p["/api/v1/user/{id}"] = {"get": get, "patch": patch, "delete": delete}
    p["/api/v1/user/{id}/logout-all"] = {"post": operation(
        spec, "End every session of a user (admins)", 200, "Sessions ended", secured=True,
        params=USER_ID, errors=[not_admin, unknown], data=schemas.SessionsEnded,
        name="SuccessOnEndUserSessions")}


def add_address_paths(spec):
    """E-mail verification and e-mail change (accounts/email_views.py)."""
    p = spec["paths"]
    invalid = ("422", "Validation failed")
    limited = ("429", "Too many attempts; see Retry-After")
    disabled = ("403", "The account is disabled")
    change = operation(
        spec, "E-mail a confirmation link to a new address, proving the current password",
        202, "Confirmation sent to the new address", secured=True, request=schemas.ChangeEmail,
        errors=[invalid, limited])
    change["description"] = (
        "The address changes only when the link is used (POST /api/v1/user/confirm-email). "
        "A wrong current_password is a 422 that counts towards the login limits; the "
        "current address or one already taken is a 422 on email. Rate-limited per user: "
        "vexpenses.ratelimit.email_change.")
    p["/api/v1/user/me/email"] = {"post": change}
    confirm = operation(
        spec, "Move the account to the new address with the e-mailed link's token", 200,
        "Email confirmed successfully", request=schemas.LinkToken, errors=[invalid, disabled],
        data=schemas.Me)
    confirm["description"] = (
        "No login needed: the token is the proof. Single use, expiring; the new address is "
        "verified. An address taken meanwhile is a 422 on email.")
    p["/api/v1/user/confirm-email"] = {"post": confirm}
    p["/api/v1/user/verify-email"] = {"post": operation(
        spec, "Prove the account's address with the e-mailed link's token (no login)", 200,
        "Email verified successfully", request=schemas.LinkToken, errors=[invalid, disabled])}
    resend = operation(
        spec, "E-mail a new verification link", 202, "Verification e-mail sent",
        request=schemas.ResendVerification, errors=[
            ("401", "A bearer token was sent and is not a live one"), invalid, limited])
    resend["description"] = (
        "With a bearer token, for that user (email is not needed); an address already "
        "verified is a 422 on email. Without one, for the body's email, required, as "
        "forgot-password: the same 202 whether or not the address has an account waiting "
        "for a link.")
    resend["requestBody"]["required"] = False
    resend["security"] = [*SECURED, {}]  # the token is optional
    p["/api/v1/user/verify-email/resend"] = {"post": resend}
