"""Interfaces of the plugin's replaceable services."""

from zope.interface import Interface


class IUploadStorage(Interface):
    """Where uploaded files live. Web processes write, workers read byte ranges.

    Paths are storage-relative strings; every process of a deployment must
    see the same storage (a shared folder, or another backend).
    """

    def save(fileobj, original_name):
        """Copy the binary ``fileobj`` into storage, streaming.

        Return a :class:`vexpenses_csv_import.storage.StoredFile`
        ``(name, path, size, sha256, head)``, ``head`` being the file's first
        bytes for sniffing. Raise ``TooLarge`` past the size limit (nothing
        is kept).
        """

    def open(path):
        """A seekable binary file object for reading ``path``; FileNotFoundError if gone."""

    def delete(path):
        """Remove ``path``; no error when it is already gone."""
