"""The plugin's settings, ``vexpenses.csv_import.*``, each with a
``VEXPENSES_CSV_IMPORT_*`` variable that wins over the ini file."""

from vexpenses_core.settings import PluginSettings, Setting, number, one_of, text

SETTINGS = PluginSettings(
    "csv_import",
    Setting("max_upload_bytes", "104857600", number()),
    Setting("chunk_bytes", "1048576", number()),
    Setting("batch_rows", "5000", number()),
    # Chunks of one import processed at once; 0 for all of them.
    Setting("parallel_chunks", "2", number(0)),
    Setting("max_line_bytes", "65536", number()),
    Setting("batch_delay", "0", number(0, float)),
    Setting("progress_ttl", "86400", number()),
    # The default picks a folder or S3, as vexpenses.storage_url says.
    Setting("storage", "vexpenses_csv_import.storage.storage_from_url", text),
    # Who may have the mailer invite the imported users.
    Setting("invitations", "admins", one_of("admins", "everyone")),
    # Per-user quotas for non-admins; 0 turns one off.
    Setting("uploads_per_hour", "10", number(0)),
    Setting("rows_per_day", "100000", number(0)),
    # Seconds an import's file is kept after the import finished.
    Setting("file_retention", "86400", number(0)),
    # Rejected rows stored per import for the error report; the counts stay exact.
    Setting("max_error_rows", "1000", number(0)),
)


def read_settings(settings, environ=None):
    """Return ``{short name: parsed value}``; a bad value stops start-up."""
    return SETTINGS.read(settings, environ)
