"""The accounts API's bodies, declared once: they validate, and they are the schema.

The field types (:data:`Name`, :data:`Email`, :data:`BirthDate`...) are the
account rules; csv_import's rows use the same ones as :class:`Register`.
"""

import base64
import binascii
import datetime
import json
from typing import Annotated, ClassVar, Literal

from pydantic import BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic import ValidationError as PydanticError

from ..api import ValidationError
from ..paginator import PageQuery
from ..schemas import (
    SCHEMA_REQUIRED,
    Body,
    Confirmation,
    Query,
    Reply,
    Required,
    Unchecked,
    errors_of,
    filter_text,
    invalid,
    string,
    too_long,
)
from ..schemas import text as free_text
from .validation import (
    MAX_EMAIL_OCTETS,
    MAX_PASSWORD_LENGTH,
    MAX_TOKEN_LENGTH,
    email_too_long,
    normalize_email,
    parse_date,
)

MAX_NAME_LENGTH = 255
# No need to fold megabytes to say "too long".
MAX_NAME_SENT = 4 * MAX_NAME_LENGTH
NOT_BLANK = r"\S"


def _name(value):
    value = free_text(value)
    if len(value) > MAX_NAME_SENT:
        raise too_long(MAX_NAME_LENGTH)
    return " ".join(value.split())  # trims, and folds inner runs of spaces


# The validation context may hold a faster function proven equal to
# normalize_email ("normalize_email"), a date parser ("parse_date": the CSV
# import also reads dd/mm/yyyy) and the date of "today".


def _email(value, info):
    value = string(value)
    if email_too_long(value):
        raise too_long(MAX_EMAIL_OCTETS)
    normalized = (info.context or {}).get("normalize_email", normalize_email)(value)
    if normalized is None:
        raise invalid("email")
    return normalized


def _birth_date(value, info):
    context = info.context or {}
    parsed = context.get("parse_date", parse_date)(string(value))
    if parsed is None:
        raise invalid("date")
    today = context.get("today") or datetime.datetime.now(datetime.UTC).date()
    if parsed > today:
        raise invalid("date_after_today")
    return parsed


# Folded, then 3 to 255 characters, without controls or invisible characters.
# The schema speaks of what is sent: a name with runs of spaces may be longer.
Name = Annotated[str, StringConstraints(min_length=3, max_length=MAX_NAME_LENGTH),
                 BeforeValidator(_name), Field(json_schema_extra={
                     "maxLength": MAX_NAME_SENT,
                     "description": "3 to 255 characters once runs of white space are folded"})]
# The canonical form (normalize_email); at most 254 octets of UTF-8.
Email = Annotated[str, Field(max_length=MAX_EMAIL_OCTETS, json_schema_extra={
    "format": "idn-email"}), BeforeValidator(_email)]
# A new password: argon2 would happily hash megabytes.
NewPassword = Annotated[str, StringConstraints(min_length=8, max_length=MAX_PASSWORD_LENGTH,
                                               pattern=NOT_BLANK), Required]
# A password to check: only bounded.
Password = Annotated[str, StringConstraints(max_length=MAX_PASSWORD_LENGTH, pattern=NOT_BLANK),
                     Required]
ResetToken = Annotated[str, StringConstraints(max_length=MAX_TOKEN_LENGTH), Required]
BirthDate = Annotated[datetime.date, BeforeValidator(_birth_date)]


def _boolean(value):
    if value is None:
        raise invalid("required")
    if not isinstance(value, bool):  # "yes", 1 and "true" are not booleans
        raise invalid("boolean")
    return value


# JSON's true or false, nothing else.
Boolean = Annotated[bool, BeforeValidator(_boolean)]


# -- requests -------------------------------------------------------------------


class Register(Body):
    name: Name
    email: Email
    password: NewPassword
    password_confirmation: Confirmation = None
    birth_date: BirthDate


class Authenticate(Body):
    # Laravel's "required|email": a malformed or over-long address is a 422
    # before any limiter, hash or key sees it.
    email: Email
    password: Password


class RefreshToken(Body):
    # Not checked here: anything that is not a live token is a 401.
    refresh_token: Annotated[Unchecked, SCHEMA_REQUIRED] = None


class ForgotPassword(Body):
    email: Email


class RecoverPassword(Body):
    """The token and the e-mail may come in the query string instead (the e-mailed link)."""

    token: ResetToken = Field(default=None, validate_default=True)
    email: Email = Field(default=None, validate_default=True)
    password: NewPassword
    password_confirmation: Confirmation = None


PROFILE_FIELDS = ("name", "birth_date")
EMAIL_CHANGE_NOT_SUPPORTED = (
    "The email cannot be changed here; use POST /api/v1/user/me/email, which e-mails a "
    "confirmation link to the new address.")
# Unknown fields are named back when their names are short; the rest are counted.
MAX_FIELD_NAME_ECHOED = 64
MAX_FIELDS_ECHOED = 10


def _profile_schema(schema, model):
    Body.model_config["json_schema_extra"](schema, model)
    schema["additionalProperties"] = False
    schema["minProperties"] = 1


class UpdateProfile(Body):
    """``PATCH /me``: any of ``name`` and ``birth_date``, with register's rules.

    Nothing else may be sent: an unknown field is an error, not ignored, so
    that a client never believes it changed something it did not.
    """

    model_config = ConfigDict(json_schema_extra=_profile_schema)
    FIELDS: ClassVar[tuple] = PROFILE_FIELDS
    # What to say when "email" is sent; None names it as any other unknown field.
    EMAIL_MESSAGE: ClassVar[str | None] = EMAIL_CHANGE_NOT_SUPPORTED

    name: Name = None
    birth_date: BirthDate = None

    @classmethod
    def changes(cls, data):
        """``{field: value}`` of the fields sent, checked; a 422 names every problem."""
        errors = {}
        if not data:
            errors["body"] = [f"Send at least one of these fields: {', '.join(cls.FIELDS)}."]
        unknown = sorted(key for key in data if key not in cls.FIELDS)
        if "email" in unknown and cls.EMAIL_MESSAGE:
            unknown.remove("email")
            errors["email"] = [cls.EMAIL_MESSAGE]
        echoed = [key for key in unknown if len(key) <= MAX_FIELD_NAME_ECHOED]
        for key in echoed[:MAX_FIELDS_ECHOED]:
            errors[key] = [f"The {key} field cannot be changed here."]
        others = len(unknown) - min(len(echoed), MAX_FIELDS_ECHOED)
        if others:
            errors.setdefault("body", []).append(
                f"{others} more unknown field(s) were sent; only "
                f"{', '.join(cls.FIELDS[:-1])} and {cls.FIELDS[-1]} can be changed here.")
        known = {key: data[key] for key in cls.FIELDS if key in data}
        try:
            body = cls.model_validate(known)
        except PydanticError as exc:
            errors = {**errors_of(exc, cls), **errors}
        if errors:
            raise ValidationError(errors)
        return {key: getattr(body, key) for key in known}


class UpdateUser(UpdateProfile):
    """``PATCH /api/v1/user/{id}`` (admins): any of ``name`` and ``birth_date``, with
    register's rules, ``is_admin`` and ``disabled`` (true or false). Nothing else."""

    FIELDS: ClassVar[tuple] = (*PROFILE_FIELDS, "is_admin", "disabled")
    EMAIL_MESSAGE: ClassVar[str | None] = None

    is_admin: Boolean = None
    disabled: Boolean = None


class ChangePassword(Body):
    """``POST /me/password``: the current password, and the new one twice."""

    current_password: Password
    password: NewPassword
    password_confirmation: Confirmation = None


class ChangeEmail(Body):
    """``POST /me/email``: the new address, and the current password as proof."""

    email: Email
    current_password: Password


class LinkToken(Body):
    """``POST /verify-email`` and ``POST /confirm-email``: the token from the e-mailed link."""

    token: ResetToken


class ResendVerification(Body):
    """``POST /verify-email/resend``: without a login, the account's address.

    With a bearer token the link goes to that user and ``email`` is not
    needed (a body sent is still checked); without one it is required.
    """

    email: Email = None


class DeleteAccount(Body):
    """``DELETE /me``: the current password, so that a stolen token cannot erase a person."""

    current_password: Password


class AdminPassword(Body):
    """``vexpenses create-admin``'s password and its repetition."""

    password: NewPassword
    password_confirmation: Confirmation = None


class NewAdmin(Body):
    name: Name
    email: Email


# -- queries --------------------------------------------------------------------


# Ours are about 40 characters; a longer one is forged, and decoding deeply
# nested JSON would raise RecursionError (a 500), not ValueError.
MAX_CURSOR_LENGTH = 100


def _cursor(value):
    """The id a cursor (users.encode_cursor) points after: 0 for an empty one, a new walk."""
    if value == "":
        return 0
    if len(value) > MAX_CURSOR_LENGTH:
        raise invalid("invalid_value")
    try:
        padded = value + "=" * (-len(value) % 4)
        after = json.loads(base64.urlsafe_b64decode(padded.encode()))["after"]
        # Ids are BIGINT: a larger number would overflow the query, not find nothing.
        if isinstance(after, int) and not isinstance(after, bool) and 0 <= after < 2**63:
            return after
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        pass
    raise invalid("invalid_value")  # not a cursor we made


UserFilter = Annotated[filter_text(MAX_NAME_LENGTH), Field(description="substring")]


class UserList(PageQuery):
    """With ``cursor`` (even empty) the list is Laravel's CursorPaginator."""

    name: UserFilter = None
    email: UserFilter = None
    cursor: Annotated[int | None, BeforeValidator(_cursor), WithJsonSchema({"type": "string"}),
                      Field(description="opaque; empty to start a cursor walk")] = None


class ExportQuery(Query):
    download: bool = Field(default=False, description=(
        "true (or 1) to have the same JSON as a file to save: "
        "Content-Disposition: attachment"))


class RecoverLink(Query):
    """The e-mailed link's token and e-mail: the body's win (checked with it)."""

    token: str = None
    email: str = None


# -- responses ------------------------------------------------------------------


class User(Reply):
    id: int
    name: str
    # Internationalised addresses are kept in their Unicode form.
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})]
    birth_date: datetime.date | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


class Me(User):
    """The user's own profile: :class:`User` and whether the address is proven."""

    email_verified_at: datetime.datetime | None


class AdminUser(Me):
    """A user as an admin sees them (``GET /api/v1/user/{id}``)."""

    is_admin: bool
    disabled_at: datetime.datetime | None


class LoginUser(Reply):
    id: int
    name: str
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})]


class Token(Reply):
    token: str
    token_type: Literal["bearer"] = None
    expires_in: int = Field(description="seconds")
    refresh_token: str = None


class Login(Reply):
    token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="seconds")
    refresh_token: str
    user: LoginUser


class Session(Reply):
    id: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None = None
    expires_at: datetime.datetime
    ip_address: str | None = None
    user_agent: str | None = None
    current: bool


class ExportUser(Reply):
    """Every stored field of the user but the secrets; later columns appear too."""

    model_config = ConfigDict(extra="allow")

    id: int
    name: str
    email: Annotated[str, Field(json_schema_extra={"format": "idn-email"})]
    birth_date: datetime.date | None
    is_admin: bool
    created_at: datetime.datetime
    updated_at: datetime.datetime


class ExportSession(Reply):
    """A login session, ended or not, without its refresh tokens."""

    model_config = ConfigDict(extra="allow")

    id: str
    user_id: int
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None
    expires_at: datetime.datetime
    revoked_at: datetime.datetime | None
    revoked_reason: str | None
    ip_address: str | None
    user_agent: str | None
    current: bool


class Export(Reply):
    """Everything held about the user. Each plugin adds its own sections
    (csv_import: ``imports``, audit_log: ``audit_log``, mailer:
    ``mail_deliveries``); ``truncated`` names the list sections cut at 1,000
    rows, newest kept."""

    model_config = ConfigDict(extra="allow")

    user: ExportUser
    sessions: list[ExportSession]
    truncated: list[str]


class SessionsEnded(Reply):
    sessions_ended: int


class CursorPage(Reply):
    """Laravel's CursorPaginator, for ?cursor="""

    data: list[User] = Field(max_length=10)
    path: str
    per_page: Literal[10]
    next_cursor: str | None
    next_page_url: str | None
    prev_cursor: None = None
    prev_page_url: None = None
