"""What every upload storage shares: the record of a stored file, what a copy
learns on the way (:class:`Tally`), new paths, and the errors."""

import dataclasses
import hashlib
import uuid

COPY_BLOCK = 1 << 20
SNIFF_BYTES = 64 * 1024


class TooLarge(Exception):
    """The upload is larger than the limit."""


class StorageUnavailable(Exception):
    """The storage could not be reached or refused the operation; try again later.

    The message is for the log: it may name the bucket, never a credential.
    """


@dataclasses.dataclass(frozen=True)
class StoredFile:
    name: str
    path: str
    size: int
    sha256: str
    head: bytes  # the first SNIFF_BYTES, for content sniffing
    has_nul: bool


def new_path():
    """``(name, path)`` of a new upload: ``csv_import/YYYY/MM/<uuid>.csv``."""
    from vexpenses_core.db import utcnow

    now = utcnow()
    name = f"{uuid.uuid4().hex}.csv"
    return name, f"csv_import/{now:%Y}/{now:%m}/{name}"


class Tally:
    """What a storage learns of a file while it copies it, whatever it copies to."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.digest = hashlib.sha256()
        self.size, self.head, self.has_nul = 0, b"", False

    def blocks(self, fileobj):
        """The blocks of ``fileobj``, counted; TooLarge past ``max_bytes``."""
        while block := fileobj.read(COPY_BLOCK):
            self.size += len(block)
            if self.size > self.max_bytes:
                raise TooLarge()
            self.digest.update(block)
            self.has_nul = self.has_nul or b"\x00" in block
            if len(self.head) < SNIFF_BYTES:
                self.head += block[: SNIFF_BYTES - len(self.head)]
            yield block

    def stored(self, name, path):
        return StoredFile(name, path, self.size, self.digest.hexdigest(), self.head,
                          self.has_nul)
