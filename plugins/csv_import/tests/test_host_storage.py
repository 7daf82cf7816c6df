"""A host app puts its own upload storage in place with one line of configuration."""

import hashlib
import io

import pytest
import webtest
from pyramid.config import Configurator
from vexpenses_csv_import.files import SNIFF_BYTES, StoredFile, TooLarge
from vexpenses_csv_import.interfaces import IUploadStorage
from vexpenses_csv_import.testing import SMALL, finished_status, make_csv, people, upload
from zope.interface import implementer

from vexpenses_core import make_wsgi_app
from vexpenses_core.testing import base_settings, clean_tables, make_user


@implementer(IUploadStorage)
class MemoryUploadStorage:
    """Keeps uploads in a dict, as a host's object store would keep them remotely."""

    def __init__(self, max_bytes=10 << 20):
        self.files = {}
        self.max_bytes = max_bytes

    def save(self, fileobj, original_name):
        data = fileobj.read()
        if len(data) > self.max_bytes:
            raise TooLarge()
        name = f"{len(self.files)}.csv"
        path = f"memory/{name}"
        self.files[path] = data
        return StoredFile(name, path, len(data), hashlib.sha256(data).hexdigest(),
                          data[:SNIFF_BYTES], b"\x00" in data)

    def open(self, path):
        if path not in self.files:
            raise FileNotFoundError(path)
        return io.BytesIO(self.files[path])

    def delete(self, path):
        self.files.pop(path, None)


@pytest.fixture
def host(database_url, environ_clean, tmp_path):
    storage = MemoryUploadStorage()
    settings = base_settings(database_url, "csv_import",
                             **{"vexpenses.upload_dir": str(tmp_path / "uploads"), **SMALL})
    with Configurator(settings=settings) as config:
        config.include("vexpenses_core")
        # The one line: every later lookup finds the host's storage.
        config.register_service_factory(lambda context, request: storage, IUploadStorage)
    app = webtest.TestApp(make_wsgi_app(config), extra_environ={"REMOTE_ADDR": "127.0.0.1"})
    yield app, storage
    registry = config.registry
    registry.queue.close()
    clean_tables(registry.dbengine)
    registry.dbengine.dispose()
    registry.redis.close()


def test_the_upload_lands_in_the_host_storage_and_imports_from_it(host, tmp_path):
    app, storage = host
    _, token = make_user(app.app.registry, email="ana@example.com")
    content = make_csv(people(7))
    data = upload(app, token, content).json["data"]
    assert storage.files == {data["path"]: content}
    assert not (tmp_path / "uploads").exists()  # the built-in storage was never used
    final = finished_status(app, token, data["id"])
    assert (final["status"], final["imported"]) == (1, 7)
