"""A real S3 API server for tests: moto's standalone server, reached over HTTP.

The code under test talks to it through boto3 exactly as to AWS: only the
standard AWS_* variables (``S3Server.env``) point it there. Subprocesses
(workers, other hosts) get the same variables::

    subprocess.Popen(..., env={**os.environ, **s3_server.env})
"""

import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import uuid

import pytest

from .workers import wait_for

__all__ = ["S3Server", "s3_server", "s3_storage_url"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """A running ``moto_server``: where it listens and how to reach it."""

    def __init__(self, endpoint_url, recording_path):
        self.endpoint_url = endpoint_url
        self.recording_path = recording_path
        self.env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint_url,
        }

    def client(self):
        """A boto3 S3 client of the server, whatever the process's own AWS_* say."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint_url)

    def new_bucket(self, prefix="uploads"):
        """Create a bucket of its own; return its storage URL ``s3://bucket/prefix``."""
        bucket = f"test-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=bucket)
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    @contextlib.contextmanager
    def recording(self):
        """Record the requests the server gets meanwhile (moto's recorder).

        Yields a function that returns them so far: dicts with ``method``,
        ``url`` and ``headers``. The recorder is the server's, so a test
        filters on its own bucket.
        """
        import requests

        api = f"{self.endpoint_url}/moto-api/recorder"
        requests.post(f"{api}/reset-recording", timeout=10).raise_for_status()
        requests.post(f"{api}/start-recording", timeout=10).raise_for_status()

        def recorded():
            text = pathlib.Path(self.recording_path).read_text()
            return [json.loads(line) for line in text.splitlines() if line.strip()]

        try:
            yield recorded
        finally:
            requests.post(f"{api}/stop-recording", timeout=10).raise_for_status()


def _reachable(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """``moto_server`` on a free local port for the whole run, stopped at the end."""
    directory = tmp_path_factory.mktemp("moto")
    command = str(pathlib.Path(sys.executable).with_name("moto_server"))
    port = free_port()
    recording_path = directory / "recording.jsonl"
    recording_path.touch()
    environ = {**os.environ, "MOTO_RECORDER_FILEPATH": str(recording_path)}
    environ.pop("MOTO_ENABLE_RECORDING", None)
    log_path = directory / "moto.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([command, "-H", "127.0.0.1", "-p", str(port)],
                                env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for(lambda: proc.poll() is not None or _reachable(port), 30) \
                or proc.poll() is not None:
            pytest.fail(f"moto_server did not start:\n{log_path.read_text()}")
        yield S3Server(f"http://127.0.0.1:{port}", str(recording_path))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_storage_url(s3_server, monkeypatch):
    """A fresh bucket's storage URL, this process's AWS_* pointing at the server.

    Other AWS_* variables of the developer's shell (a profile, a session
    token) are taken away, so that they cannot send the test elsewhere.
    """
    for name in list(os.environ):
        if name.startswith("AWS_") and name not in s3_server.env:
            monkeypatch.delenv(name)
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server.new_bucket()
