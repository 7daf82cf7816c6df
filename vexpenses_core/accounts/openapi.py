"""The accounts routes in the OpenAPI document."""

from ..openapi import PAGE, body_refused, envelope, error_response, limited_response, paginator

USER = {
    "type": "object",
    "required": ["id", "name", "email", "birth_date", "created_at", "updated_at"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        # Internationalised addresses are kept in their Unicode form.
        "email": {"type": "string", "format": "idn-email"},
        "birth_date": {"type": ["string", "null"], "format": "date"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}
USER_REF = {"$ref": "#/components/schemas/User"}

PAGINATOR = {
    **paginator(USER_REF),
    "description": "Laravel's LengthAwarePaginator; with ?cursor= its CursorPaginator.",
}
CURSOR_PAGE = {
    "type": "object",
    "description": "Laravel's CursorPaginator, for ?cursor=",
    "required": ["data", "path", "per_page", "next_cursor", "next_page_url"],
    "properties": {
        "data": {"type": "array", "maxItems": 10, "items": USER_REF},
        "path": {"type": "string"},
        "per_page": {"const": 10},
        "next_cursor": {"type": ["string", "null"]},
        "next_page_url": {"type": ["string", "null"]},
        "prev_cursor": {"type": "null"},
        "prev_page_url": {"type": "null"},
    },
}

TOKEN = {"type": "object", "required": ["token", "expires_in"], "properties": {
    "token": {"type": "string"},
    "token_type": {"const": "bearer"},
    "expires_in": {"type": "integer", "description": "seconds"},
    "refresh_token": {"type": "string"},
}}
LOGIN = {**TOKEN, "required": ["token", "token_type", "expires_in", "refresh_token", "user"],
         "properties": {**TOKEN["properties"], "user": {
             "type": "object", "required": ["id", "name", "email"],
             "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
                            "email": {"type": "string", "format": "idn-email"}}}}}
SESSION = {"type": "object", "required": ["id", "created_at", "expires_at", "current"],
           "properties": {
               "id": {"type": "string"},
               "created_at": {"type": "string", "format": "date-time"},
               "last_used_at": {"type": ["string", "null"], "format": "date-time"},
               "expires_at": {"type": "string", "format": "date-time"},
               "ip_address": {"type": ["string", "null"]},
               "user_agent": {"type": ["string", "null"]},
               "current": {"type": "boolean"},
           }}

SECURED = [{"bearer": []}]

# The limits of accounts/validation.py, so that the schema refuses what the service does.
NOT_BLANK = "\\S"
EMAIL = {"format": "idn-email", "maxLength": 254}
PASSWORD = {"minLength": 8, "maxLength": 1024, "pattern": NOT_BLANK}


def body(**properties):
    required = [name for name, schema in properties.items() if schema.pop("required", False)]
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


def field(type_="string", required=True, **extra):
    return {"type": type_, "required": required, **extra}


def operation(summary, status, message, secured=False, request=None, params=None, errors=(),
              data=None):
    """``data`` is the schema of the envelope's data (null when None)."""
    responses = {str(status): envelope(message, data)}
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
        op["requestBody"] = request
    if params:
        op["parameters"] = params
    return op


def query(name, type_="string", description="", **schema):
    return {"name": name, "in": "query", "required": False,
            "schema": {"type": type_, **schema}, "description": description}


def add_paths(spec):
    spec["components"]["schemas"]["User"] = USER
    spec["components"]["schemas"]["Paginator"] = PAGINATOR
    spec["components"]["schemas"]["CursorPage"] = CURSOR_PAGE
    p = spec["paths"]
    invalid = ("422", "Validation failed")
    limited = ("429", "Too many attempts; see Retry-After")
    p["/api/v1/user/register"] = {"post": operation(
        "Register", 201, "Success on register user", request=body(
            name=field(minLength=3, maxLength=255), email=field(**EMAIL),
            password=field(**PASSWORD), password_confirmation=field(),
            birth_date=field(format="date")),
        errors=[invalid, limited], data=USER_REF)}
    p["/api/v1/user/authenticate"] = {"post": operation(
        "Log in: access token, refresh token and user", 201, "Success on login user",
        request=body(email=field(**EMAIL), password=field(maxLength=1024, pattern=NOT_BLANK)),
        errors=[("401", "Bad credentials"), invalid, limited], data=LOGIN)}
    legacy_get = operation("New access token for the current session", 201,
                           "Success on refresh user", secured=True, data=TOKEN,
                           errors=[("405", "Turned off: vexpenses.legacy_get_refresh")])
    legacy_get["deprecated"] = True
    legacy_get["description"] = (
        "The original app's refresh: re-signs an access token with nothing but that token. "
        "Never past the login's absolute lifetime (vexpenses.session_max_days). Answers 405 "
        "with Allow: POST when vexpenses.legacy_get_refresh is false; use POST instead.")
    p["/api/v1/user/refresh-token"] = {
        "get": legacy_get,
        "post": operation("Rotate a refresh token; reuse ends the session", 201,
                          "Success on refresh user", request=body(refresh_token=field()),
                          errors=[("401", "Invalid, expired or reused refresh token")],
                          data=TOKEN),
    }
    logout = operation("End the current session", 201, "Success on logout user", secured=True)
    p["/api/v1/user/logout"] = {"get": logout, "post": logout}
    p["/api/v1/user/logout-all"] = {"post": operation(
        "End every session of the user", 201, "Success on logout user from every session",
        secured=True, data={"type": "object", "required": ["sessions_ended"],
                            "properties": {"sessions_ended": {"type": "integer"}}})}
    p["/api/v1/user/sessions"] = {"get": operation(
        "The user's active sessions", 200, "Success on get sessions", secured=True,
        data={"type": "array", "items": SESSION})}
    p["/api/v1/user/sessions/{session_id}"] = {"delete": operation(
        "End one session", 200, "Success on revoke session", secured=True,
        params=[{"name": "session_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}],
        errors=[("404", "No such session of this user")])}
    p["/api/v1/user/forgot-password"] = {"post": operation(
        "E-mail a password reset link (same answer for unknown e-mails)", 200,
        "Password reset link sent successfully", request=body(email=field(**EMAIL)),
        errors=[invalid, limited])}
    p["/api/v1/user/recover-password"] = {"post": operation(
        "Set a new password with a reset token; ends every session", 200,
        "Password reset successfully",
        request=body(token=field(required=False, maxLength=200),
                     email=field(required=False, **EMAIL),
                     password=field(**PASSWORD), password_confirmation=field()),
        params=[query("token"), query("email")], errors=[invalid])}
    p["/api/v1/user/me"] = {"get": operation(
        "The current user", 200, "Success on get user", secured=True, data=USER_REF)}
    p["/api/v1/user"] = {"get": operation(
        "List users, 10 per page", 200, "Success on get users", secured=True,
        params=[PAGE, query("name", description="substring", maxLength=255),
                query("email", description="substring", maxLength=255),
                query("cursor", description="opaque; empty to start a cursor walk")],
        errors=[invalid], data={"anyOf": [{"$ref": "#/components/schemas/Paginator"},
                                          {"$ref": "#/components/schemas/CursorPage"}]})}
