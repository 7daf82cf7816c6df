"""Validation of account input, with Laravel's messages per field.

Each check returns the cleaned value or records a message; ``raise_if_any``
turns the messages into a 422 in the envelope.
"""

import datetime

from email_validator import EmailNotValidError, validate_email

from ..api import ValidationError


def label(field):
    return field.replace("_", " ")


class Validator:
    def __init__(self, data):
        self.data = data
        self.errors = {}

    def error(self, field, message):
        self.errors.setdefault(field, []).append(message)

    def raise_if_any(self):
        if self.errors:
            raise ValidationError(self.errors)

    def string(self, field, *, required=True):
        value = self.data.get(field)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.error(field, f"The {label(field)} field is required.")
            return None
        if not isinstance(value, str):
            self.error(field, f"The {label(field)} field must be a string.")
            return None
        if "\x00" in value:
            self.error(field, f"The {label(field)} field must not contain null characters.")
            return None
        return value

    def name(self, field="name"):
        value = self.string(field)
        if value is None:
            return None
        value = " ".join(value.split())  # trims, and folds inner runs of white space
        if len(value) < 3:
            self.error(field, f"The {label(field)} field must be at least 3 characters.")
        elif len(value) > 255:
            self.error(field, f"The {label(field)} field must not be greater than 255 characters.")
        return value

    def email(self, field="email"):
        value = self.string(field)
        if value is None:
            return None
        value = value.strip()
        if len(value) > 255:
            self.error(field, f"The {label(field)} field must not be greater than 255 characters.")
            return None
        normalized = normalize_email(value)
        if normalized is None:
            self.error(field, f"The {label(field)} field must be a valid email address.")
        return normalized

    def password(self, field="password"):
        value = self.string(field)
        if value is None:
            return None
        if len(value) < 8:
            self.error(field, f"The {label(field)} field must be at least 8 characters.")
        elif len(value) > 1024:  # argon2 would happily hash megabytes
            message = f"The {label(field)} field must not be greater than 1024 characters."
            self.error(field, message)
        if self.data.get(f"{field}_confirmation") != value:
            self.error(field, f"The {label(field)} field confirmation does not match.")
        return value

    def birth_date(self, field="birth_date", *, required=True, today=None):
        value = self.string(field, required=required)
        if value is None:
            return None
        parsed = parse_date(value)
        if parsed is None:
            self.error(field, f"The {label(field)} field must be a valid date.")
            return None
        if parsed > (today or datetime.datetime.now(datetime.UTC).date()):
            self.error(field, f"The {label(field)} field must be a date before or equal to today.")
            return None
        return parsed


def normalize_email(value):
    """The e-mail as stored (lower case), or ``None`` when its syntax is wrong.

    Syntax only: no DNS lookups.
    """
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.normalized.lower()


def parse_date(value, formats=("%Y-%m-%d",)):
    value = value.strip()
    for fmt in formats:
        try:
            parsed = datetime.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
        if parsed.strftime(fmt) != value:  # "2020-1-5" and friends: not the format asked
            continue
        if parsed.year < 1900:
            return None
        return parsed
    return None
