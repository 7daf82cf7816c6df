"""``vexpenses create-admin CONFIG``: the first administrator.

The password comes from ``VEXPENSES_ADMIN_PASSWORD`` or a prompt, never
from the command line, where it would land in shell history and ``ps``.
"""

import getpass
import os
import sys

from ..api import ValidationError
from ..schemas import validate
from ..scripting import bootstrap_app
from ..settings import ConfigurationError
from . import schemas
from .users import UserService


def read_password():
    password = os.environ.get("VEXPENSES_ADMIN_PASSWORD")
    if password:
        return password, password
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "no password: set VEXPENSES_ADMIN_PASSWORD or run the command in a terminal"
        )
    return getpass.getpass("Password: "), getpass.getpass("Repeat the password: ")


def create_admin(args):
    try:
        admin = validate(schemas.NewAdmin, {"name": args.name, "email": args.email})
    except ValidationError as exc:
        return report(exc)
    name, email = admin.name, admin.email
    env = bootstrap_app(args.config_uri)
    request = env["request"]
    try:
        with request.tm:
            users = UserService(request)
            existing = users.by_email(email)
            if existing is not None:
                users.promote(existing)
                print(f"{email} already exists (id {existing.id}); it is now an admin")
                return 0
            password, confirmation = read_password()
            try:
                password = validate(schemas.AdminPassword, {
                    "password": password, "password_confirmation": confirmation}).password
            except ValidationError as exc:
                return report(exc)  # nothing written yet
            # The same method as POST /register, hooks included (the mailer
            # welcomes the new admin), without the per-address limit.
            user = users.register(name, email, password, None, is_admin=True)
            print(f"created admin {email} (id {user.id})")
    finally:
        env["closer"]()
    return 0


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
