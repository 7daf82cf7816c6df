"""Upload storage: a local (or shared) folder, or S3 (:mod:`.s3storage`).

``vexpenses.storage_url`` picks one: ``file:///folder`` (by default the
folder ``vexpenses.upload_dir``) or ``s3://bucket/prefix``. A host app may
name its own class in ``vexpenses.csv_import.storage`` instead.
"""

import os

from pyramid.path import DottedNameResolver
from zope.interface import implementer

from .files import StorageUnavailable, StoredFile, Tally, TooLarge, new_path
from .interfaces import IUploadStorage

# What a host app's own storage needs, where it always was.
__all__ = ["LocalUploadStorage", "StorageUnavailable", "StoredFile", "TooLarge",
           "storage_from_url"]

DEFAULT_STORAGE = "vexpenses_csv_import.storage.storage_from_url"


@implementer(IUploadStorage)
class LocalUploadStorage:
    """Files under ``<folder>/csv_import/YYYY/MM/<uuid>.csv``, the folder of a
    ``file://`` ``vexpenses.storage_url`` (else ``vexpenses.upload_dir``).

    With several hosts, the folder must be one shared folder (e.g. NFS),
    or the web host's uploads are invisible to the workers.
    """

    def __init__(self, settings, max_bytes):
        url = settings.get("vexpenses.storage_url") or ""
        folder = url[len("file://"):] if url.startswith("file://") \
            else settings["vexpenses.upload_dir"]
        self.root = os.path.abspath(folder)
        self.max_bytes = max_bytes

    def _full(self, path):
        full = os.path.abspath(os.path.join(self.root, path))
        if not full.startswith(self.root + os.sep):
            raise FileNotFoundError(path)
        return full

    def save(self, fileobj, original_name):
        name, path = new_path()
        full = self._full(path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tally = Tally(self.max_bytes)
        try:
            # Owner-only, whatever the umask: the file holds other people's data.
            fd = os.open(full + ".part", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as out:
                for block in tally.blocks(fileobj):
                    out.write(block)
            os.replace(full + ".part", full)
        except BaseException:
            for leftover in (full + ".part", full):
                if os.path.exists(leftover):
                    os.remove(leftover)
            raise
        return tally.stored(name, path)

    def open(self, path):
        return open(self._full(path), "rb")

    def delete(self, path):
        try:
            os.remove(self._full(path))
        except FileNotFoundError:
            pass


def storage_from_url(settings, max_bytes):
    """The storage ``vexpenses.storage_url`` calls for: the default of
    ``vexpenses.csv_import.storage``."""
    if (settings.get("vexpenses.storage_url") or "").startswith("s3://"):
        from .s3storage import S3UploadStorage

        return S3UploadStorage(settings, max_bytes)
    return LocalUploadStorage(settings, max_bytes)


def check_storage(settings, options):
    """Raise ConfigurationError when the default storage is S3 and boto3 is missing."""
    if options["storage"] == DEFAULT_STORAGE \
            and (settings.get("vexpenses.storage_url") or "").startswith("s3://"):
        from .s3storage import import_boto3

        import_boto3()


def make_storage(settings, options):
    factory = DottedNameResolver().maybe_resolve(options["storage"])
    return factory(settings, options["max_upload_bytes"])
