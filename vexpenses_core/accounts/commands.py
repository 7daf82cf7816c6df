"""``vexpenses create-admin CONFIG``: the first administrator.

The password comes from ``VEXPENSES_ADMIN_PASSWORD`` or a prompt, never
from the command line, where it would land in shell history and ``ps``.
"""

import getpass
import os
import sys

from ..api import ValidationError
from ..db import utcnow
from ..schemas import validate
from ..scripting import bootstrap_app
from ..settings import ConfigurationError
from . import schemas
from .users import UserService

#: How many passwords the prompt takes before it gives up.
PROMPT_TRIES = 3


class Cancelled(Exception):
    """No password: the prompt was given up on (Ctrl-D, or too many refused tries)."""


def checked_password(password, confirmation):
    """The password if the rules take it and it was repeated exactly; else ValidationError."""
    return validate(schemas.AdminPassword, {
        "password": password, "password_confirmation": confirmation}).password


def prompt_password(ask=getpass.getpass):
    """Ask at the terminal until a password passes the rules and is repeated exactly.

    A refusal is explained and the question asked again, up to PROMPT_TRIES
    times. Ctrl-D raises EOFError and Ctrl-C KeyboardInterrupt, as usual.
    """
    for tries_left in range(PROMPT_TRIES - 1, -1, -1):
        password = ask("Password: ")
        try:
            checked_password(password, password)  # the rules first: why repeat a refused one?
            return checked_password(password, ask("Repeat the password: "))
        except ValidationError as exc:
            report(exc)
            if tries_left:
                print(f"Try again ({tries_left} {'tries' if tries_left > 1 else 'try'} left).",
                      file=sys.stderr)
    raise Cancelled(f"no password accepted after {PROMPT_TRIES} tries; nothing was created")


def read_password():
    """The new admin's password: from VEXPENSES_ADMIN_PASSWORD, or the terminal."""
    password = os.environ.get("VEXPENSES_ADMIN_PASSWORD")
    if password:
        return checked_password(password, password)
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "no password: set VEXPENSES_ADMIN_PASSWORD or run the command in a terminal"
        )
    return prompt_password()


def create_admin(args):
    try:
        admin = validate(schemas.NewAdmin, {"name": args.name, "email": args.email})
    except ValidationError as exc:
        return report(exc)
    try:
        return add_admin(args.config_uri, admin.name, admin.email)
    except ValidationError as exc:
        return report(exc)  # a refused password, or the e-mail taken meanwhile: nothing written
    except Cancelled as exc:
        print(f"vexpenses: {exc}", file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt) as exc:
        # The prompt left the cursor after "Password: ".
        print("\nvexpenses: cancelled; nothing was created", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1


def add_admin(config_uri, name, email):
    with bootstrap_app(config_uri) as env:
        request = env["request"]
        with request.tm:
            users = UserService(request)
            existing = users.by_email(email)
            if existing is not None:
                users.promote(existing)
                vouch_for(existing)
                print(f"{email} already exists (id {existing.id}); it is now an admin")
                return 0
        # Asked outside any transaction: nobody waits on a lock while the admin types.
        password = read_password()
        with request.tm:
            # The same method as POST /register, hooks included (the mailer
            # welcomes the new admin), without the per-address limit.
            user = UserService(request).register(name, email, password, None, is_admin=True)
            vouch_for(user)
        print(f"created admin {email} (id {user.id})")
    return 0


def vouch_for(admin):
    """The operator vouches for the admin's address: mark it verified, or
    ``vexpenses.accounts.require_verified_email`` would lock them out."""
    if admin.email_verified_at is None:
        admin.email_verified_at = utcnow()


def report(exc):
    """Print a validation error's messages; the exit status."""
    for field, messages in exc.errors.items():
        for message in messages:
            print(f"vexpenses: {field}: {message}", file=sys.stderr)
    return 2


def add_commands(subparsers):
    parser = subparsers.add_parser(
        "create-admin",
        help="create an administrator (or make an existing user one)",
        description="Create an administrator account. The password is read from "
        "VEXPENSES_ADMIN_PASSWORD or asked for at a prompt; it is never taken from the "
        "command line. An existing user with that e-mail is made an admin instead, "
        "keeping their password.",
    )
    parser.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    parser.add_argument("--email", required=True,
                        help="the admin's e-mail address, used to log in")
    parser.add_argument("--name", default="Administrator",
                        help="the admin's name, 3 to 255 characters (default: Administrator)")
    parser.set_defaults(func=create_admin)
