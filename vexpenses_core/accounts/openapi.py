"""The accounts routes in the OpenAPI document."""

from ..openapi import error_response

USER = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "email": {"type": "string", "format": "email"},
        "birth_date": {"type": ["string", "null"], "format": "date"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
}

PAGINATOR = {
    "type": "object",
    "description": "Laravel's LengthAwarePaginator; with ?cursor= its CursorPaginator.",
    "properties": {
        "current_page": {"type": "integer"},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
        "first_page_url": {"type": "string"},
        "from": {"type": ["integer", "null"]},
        "last_page": {"type": "integer"},
        "last_page_url": {"type": "string"},
        "links": {"type": "array", "items": {"type": "object"}},
        "next_page_url": {"type": ["string", "null"]},
        "path": {"type": "string"},
        "per_page": {"type": "integer"},
        "prev_page_url": {"type": ["string", "null"]},
        "to": {"type": ["integer", "null"]},
        "total": {"type": "integer"},
        "next_cursor": {"type": ["string", "null"]},
    },
}

SECURED = [{"bearer": []}]


def body(**properties):
    required = [name for name, schema in properties.items() if schema.pop("required", False)]
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": required, "properties": properties}}}}


def field(type_="string", required=True, **extra):
    return {"type": type_, "required": required, **extra}


def operation(summary, status, message, secured=False, request=None, params=None, errors=()):
    responses = {str(status): {"description": message}}
    for code, text in (("401", "Missing, invalid, expired or revoked token"),) if secured else ():
        responses[code] = error_response(text)
    for code, text in errors:
        responses[code] = error_response(text)
    op = {"summary": summary, "tags": ["accounts"], "responses": responses}
    if secured:
        op["security"] = SECURED
    if request:
        op["requestBody"] = request
    if params:
        op["parameters"] = params
    return op


def query(name, type_="string", description=""):
    return {"name": name, "in": "query", "required": False, "schema": {"type": type_},
            "description": description}


def add_paths(spec):
    spec["components"]["schemas"]["User"] = USER
    spec["components"]["schemas"]["Paginator"] = PAGINATOR
    p = spec["paths"]
    invalid = ("422", "Validation failed")
    limited = ("429", "Too many attempts; see Retry-After")
    p["/api/v1/user/register"] = {"post": operation(
        "Register", 201, "Success on register user", request=body(
            name=field(minLength=3, maxLength=255), email=field(format="email"),
            password=field(minLength=8), password_confirmation=field(),
            birth_date=field(format="date")),
        errors=[invalid])}
    p["/api/v1/user/authenticate"] = {"post": operation(
        "Log in: access token, refresh token and user", 201, "Success on login user",
        request=body(email=field(), password=field()),
        errors=[("401", "Bad credentials"), invalid, limited])}
    legacy_get = operation("New access token for the current session", 201,
                           "Success on refresh user", secured=True,
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
                          errors=[("401", "Invalid, expired or reused refresh token")]),
    }
    logout = operation("End the current session", 201, "Success on logout user", secured=True)
    p["/api/v1/user/logout"] = {"get": logout, "post": logout}
    p["/api/v1/user/logout-all"] = {"post": operation(
        "End every session of the user", 201, "Success on logout user from every session",
        secured=True)}
    p["/api/v1/user/sessions"] = {"get": operation(
        "The user's active sessions", 200, "Success on get sessions", secured=True)}
    p["/api/v1/user/sessions/{session_id}"] = {"delete": operation(
        "End one session", 200, "Success on revoke session", secured=True,
        params=[{"name": "session_id", "in": "path", "required": True,
                 "schema": {"type": "string"}}],
        errors=[("404", "No such session of this user")])}
    p["/api/v1/user/forgot-password"] = {"post": operation(
        "E-mail a password reset link (same answer for unknown e-mails)", 200,
        "Password reset link sent successfully", request=body(email=field()),
        errors=[invalid, limited])}
    p["/api/v1/user/recover-password"] = {"post": operation(
        "Set a new password with a reset token; ends every session", 200,
        "Password reset successfully",
        request=body(token=field(required=False), email=field(required=False),
                     password=field(), password_confirmation=field()),
        params=[query("token"), query("email")], errors=[invalid])}
    p["/api/v1/user/me"] = {"get": operation(
        "The current user", 200, "Success on get user", secured=True)}
    p["/api/v1/user"] = {"get": operation(
        "List users, 10 per page", 200, "Success on get users", secured=True,
        params=[query("page", "integer"), query("name", description="substring"),
                query("email", description="substring"),
                query("cursor", description="opaque; empty to start a cursor walk")],
        errors=[invalid])}
