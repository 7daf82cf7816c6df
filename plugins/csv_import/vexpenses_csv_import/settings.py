"""The plugin's settings, ``vexpenses.csv_import.*``, each with an environment override.

As in the core, an environment variable that is set (even empty) wins over
the ini file, and the default applies when neither is given.
"""

import os

from vexpenses_core.settings import ConfigurationError

PREFIX = "vexpenses.csv_import."

#: name -> (environment variable, default, parser)
SETTINGS = {
    "max_upload_bytes": ("VEXPENSES_CSV_IMPORT_MAX_UPLOAD_BYTES", "104857600", int),
    "chunk_bytes": ("VEXPENSES_CSV_IMPORT_CHUNK_BYTES", "262144", int),
    "batch_rows": ("VEXPENSES_CSV_IMPORT_BATCH_ROWS", "2000", int),
    "max_line_bytes": ("VEXPENSES_CSV_IMPORT_MAX_LINE_BYTES", "65536", int),
    "batch_delay": ("VEXPENSES_CSV_IMPORT_BATCH_DELAY", "0", float),
    "progress_ttl": ("VEXPENSES_CSV_IMPORT_PROGRESS_TTL", "86400", int),
    "storage": ("VEXPENSES_CSV_IMPORT_STORAGE",
                "vexpenses_csv_import.storage.LocalUploadStorage", str),
    # Who may have the mailer invite the imported users: "admins" or "everyone".
    "invitations": ("VEXPENSES_CSV_IMPORT_INVITATIONS", "admins", str),
    # Per-user quotas for non-admins; 0 turns one off.
    "uploads_per_hour": ("VEXPENSES_CSV_IMPORT_UPLOADS_PER_HOUR", "10", int),
    "rows_per_day": ("VEXPENSES_CSV_IMPORT_ROWS_PER_DAY", "100000", int),
    # Seconds an import's file is kept after the import finished.
    "file_retention": ("VEXPENSES_CSV_IMPORT_FILE_RETENTION", "86400", int),
    # Rejected rows stored per import for the error report; the counts stay exact.
    "max_error_rows": ("VEXPENSES_CSV_IMPORT_MAX_ERROR_ROWS", "1000", int),
}

ZERO_ALLOWED = ("batch_delay", "uploads_per_hour", "rows_per_day", "file_retention",
                "max_error_rows")
CHOICES = {"invitations": ("admins", "everyone")}


def read_settings(settings, environ=None):
    """Return ``{short name: parsed value}``; a bad value stops start-up."""
    environ = os.environ if environ is None else environ
    result = {}
    for name, (var, default, parse) in SETTINGS.items():
        raw = str(environ[var] if var in environ else settings.get(PREFIX + name, default))
        if parse is str:
            value = raw.strip()
            if not value:
                raise ConfigurationError(f"{PREFIX}{name} ({var}) must not be empty")
            if name in CHOICES and value not in CHOICES[name]:
                raise ConfigurationError(
                    f"{PREFIX}{name} ({var}) must be one of {', '.join(CHOICES[name])}, "
                    f"not {raw!r}")
        else:
            try:
                value = parse(raw.strip())
            except ValueError:
                value = None
            minimum = 0 if name in ZERO_ALLOWED else 1
            if value is None or value < minimum:
                raise ConfigurationError(
                    f"{PREFIX}{name} ({var}) must be a number of at least {minimum}, "
                    f"not {raw!r}"
                )
        result[name] = value
    return result
