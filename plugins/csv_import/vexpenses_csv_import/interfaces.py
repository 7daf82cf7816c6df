"""Interfaces of the plugin's replaceable services."""

from zope.interface import Interface


class IUploadStorage(Interface):
    """Where uploaded files live. Web processes write, workers read byte ranges.

    Paths are storage-relative strings; every process of a deployment must
    see the same storage (a shared folder, S3, or another backend). A backend
    that cannot be reached raises ``StorageUnavailable`` (from
    :mod:`vexpenses_csv_import.storage`): an upload then answers 503.
    """

    def save(fileobj, original_name):
        """Copy the binary ``fileobj`` into storage, streaming.

        Return a :class:`vexpenses_csv_import.storage.StoredFile`
        ``(name, path, size, sha256, head)``, ``head`` being the file's first
        bytes for sniffing. Raise ``TooLarge`` past the size limit (nothing
        is kept).
        """

    def open(path):
        """A seekable binary file object for reading ``path``; FileNotFoundError if gone.

        Workers seek to their chunk and read only its bytes: a remote backend
        should fetch what is read, not the whole file.
        """

    def delete(path):
        """Remove ``path``; no error when it is already gone."""


class IProgressStore(Interface):
    """Live counts of running imports, shared by every process of a deployment.

    Counts may lag the database (a batch adds its counts after it commits)
    but never lead it.
    """

    def start(import_id, planned, started):
        """Create the progress of an import that starts processing."""

    def add(import_id, counts, checkpoint=None):
        """Add one committed batch's counts.

        ``checkpoint`` is ``(chunk index, row the chunk's next batch starts
        at)`` after this batch: a batch at or behind the checkpoint that a
        rebuild stored is already counted, and is not added again.
        """

    def read(import_id):
        """The progress as a dict of ints, or None when it is missing or incomplete."""

    def seed(import_id, counts, planned, started, checkpoints=None):
        """Replace the progress with counts rebuilt from the database, and
        ``checkpoints`` (chunk index -> next row) read in the same query."""

    def drop(import_id):
        """Forget an import that has finished."""
