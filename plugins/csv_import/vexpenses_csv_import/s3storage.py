"""Upload storage in S3, or any store that speaks its API (MinIO, Ceph, R2).

Only boto3's own configuration says where and as whom: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, AWS_ENDPOINT_URL, ~/.aws/config,
an instance role... ``vexpenses.storage_url`` names the bucket and prefix.
boto3 is imported only here, so that the local storage needs nothing more.
"""

import io
import logging
import threading
from urllib.parse import urlsplit

from zope.interface import implementer

from vexpenses_core.settings import ConfigurationError

from .files import COPY_BLOCK, StorageUnavailable, Tally, new_path
from .interfaces import IUploadStorage

log = logging.getLogger(__name__)

# Every part but the last must be 5 MiB or more; one part at a time is held in memory.
PART_BYTES = 8 << 20
# A read under SMALL_READ fetches READ_AHEAD, for the reads to come; any other
# read fetches exactly its bytes (a worker's chunk, the planner's 1 MiB blocks).
SMALL_READ = 4096
READ_AHEAD = 64 * 1024
INSTALL_HINT = "pip install vexpenses-csv-import[s3]"


def import_boto3():
    try:
        import boto3
        import botocore.config
    except ImportError:
        raise ConfigurationError(
            f"vexpenses.storage_url (VEXPENSES_STORAGE_URL) is an s3:// URL, which needs "
            f"boto3: {INSTALL_HINT}") from None
    return boto3, botocore.config


def bucket_and_prefix(storage_url):
    parts = urlsplit(storage_url)
    prefix = parts.path.strip("/")
    return parts.netloc, prefix + "/" if prefix else ""


@implementer(IUploadStorage)
class S3UploadStorage:
    """Objects ``<prefix>/csv_import/YYYY/MM/<uuid>.csv`` in the bucket of
    ``vexpenses.storage_url``: the paths of the local storage, under the prefix.

    Uploads go up as a multipart upload, one part in memory at a time;
    workers read their byte range with ranged GETs.
    """

    def __init__(self, settings, max_bytes, part_bytes=PART_BYTES):
        self.boto3, config = import_boto3()
        self.bucket, self.prefix = bucket_and_prefix(settings["vexpenses.storage_url"])
        self.max_bytes = max_bytes
        self.part_bytes = part_bytes
        # Fail within seconds when the store is away: a request waits on it.
        self.config = config.Config(connect_timeout=5, read_timeout=30,
                                    retries={"mode": "standard", "max_attempts": 3})
        self._client = None
        self._lock = threading.Lock()

    @property
    def client(self):
        # Made on first use, once per process (clients are thread-safe): a
        # command that never touches the files never pays for one.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self.boto3.session.Session().client("s3", config=self.config)
        return self._client

    def key(self, path):
        return self.prefix + path

    def save(self, fileobj, original_name):
        name, path = new_path()
        upload = _Upload(self, self.key(path))
        tally = Tally(self.max_bytes)
        part = bytearray()
        try:
            for block in tally.blocks(fileobj):
                part += block
                if len(part) >= self.part_bytes:
                    data = bytes(memoryview(part)[: self.part_bytes])
                    del part[: self.part_bytes]
                    upload.send(data)
            upload.finish(bytes(part))
        except BaseException as exc:
            upload.abort()
            if self._is_storage_error(exc):
                raise StorageUnavailable(str(exc)) from exc
            raise
        return tally.stored(name, path)

    def open(self, path):
        key = self.key(path)
        try:
            size = self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except Exception as exc:
            raise self._reading_error(exc, path) from exc
        return _RangeReader(self, key, path, size)

    def delete(self, path):
        # S3 answers a delete of a missing key with success: already idempotent.
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
        except Exception as exc:
            if self._is_storage_error(exc):
                raise StorageUnavailable(str(exc)) from exc
            raise

    def _is_storage_error(self, exc):
        import botocore.exceptions

        return isinstance(exc, (botocore.exceptions.BotoCoreError,
                                botocore.exceptions.ClientError))

    def _reading_error(self, exc, path):
        import botocore.exceptions

        if isinstance(exc, botocore.exceptions.ClientError):
            code = exc.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchKey"):
                return FileNotFoundError(path)
        if self._is_storage_error(exc):
            return StorageUnavailable(str(exc))
        return exc


class _Upload:
    """One object's upload: a plain PUT when it fits one part, else a multipart upload.

    ``abort`` leaves neither an object nor a pending multipart upload (whose
    parts S3 would keep, and bill, until someone aborts it).
    """

    def __init__(self, storage, key):
        self.storage = storage
        self.key = key
        self.upload_id = None
        self.parts = []

    def send(self, data):
        client, bucket = self.storage.client, self.storage.bucket
        if self.upload_id is None:
            self.upload_id = client.create_multipart_upload(
                Bucket=bucket, Key=self.key, ContentType="text/csv")["UploadId"]
        number = len(self.parts) + 1
        etag = client.upload_part(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                  PartNumber=number, Body=data)["ETag"]
        self.parts.append({"PartNumber": number, "ETag": etag})

    def finish(self, rest):
        client, bucket = self.storage.client, self.storage.bucket
        if self.upload_id is None:
            client.put_object(Bucket=bucket, Key=self.key, Body=rest,
                              ContentType="text/csv")
            return
        if rest:
            self.send(rest)
        client.complete_multipart_upload(Bucket=bucket, Key=self.key, UploadId=self.upload_id,
                                         MultipartUpload={"Parts": self.parts})
        self.upload_id = None

    def abort(self):
        if self.upload_id is None:
            return
        try:
            self.storage.client.abort_multipart_upload(
                Bucket=self.storage.bucket, Key=self.key, UploadId=self.upload_id)
        except Exception:  # noqa: BLE001  the upload's own error is the one to report
            log.warning("could not abort the multipart upload of %s; a bucket lifecycle "
                        "rule (AbortIncompleteMultipartUpload) removes it", self.key,
                        exc_info=True)


class _RangeReader(io.RawIOBase):
    """A seekable read-only file over one object, read with ranged GETs.

    A read of ``n`` bytes is one GET of those bytes, so that a worker's read
    of its chunk fetches the chunk and nothing more; reads under SMALL_READ
    fetch READ_AHEAD bytes and are served from them.
    """

    def __init__(self, storage, key, path, size):
        self.storage = storage
        self.key = key
        self.path = path
        self.size = size
        self.position = 0
        self.buffer = b""
        self.buffer_start = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self.position = base + offset
        return self.position

    def read(self, size=-1):
        if size is None or size < 0:
            return self.readall()
        end = min(self.position + size, self.size)
        if end <= self.position:
            return b""
        offset = self.position - self.buffer_start
        if not (0 <= offset and end <= self.buffer_start + len(self.buffer)):
            if size >= SMALL_READ:
                data = self._get(self.position, end)
                self.position += len(data)
                return data
            self.buffer_start = self.position
            self.buffer = self._get(self.position, min(self.position + READ_AHEAD, self.size))
            offset = 0
        data = self.buffer[offset:offset + end - self.position]
        self.position += len(data)
        return data

    def readall(self):
        blocks = []
        while block := self.read(COPY_BLOCK):  # 1 MiB GETs
            blocks.append(block)
        return b"".join(blocks)

    def readinto(self, buffer):
        data = self.read(len(buffer))
        memoryview(buffer)[:len(data)] = data
        return len(data)

    def _get(self, start, end):
        try:
            body = self.storage.client.get_object(
                Bucket=self.storage.bucket, Key=self.key,
                Range=f"bytes={start}-{end - 1}")["Body"]
            with body:
                return body.read()
        except Exception as exc:
            raise self.storage._reading_error(exc, self.path) from exc
