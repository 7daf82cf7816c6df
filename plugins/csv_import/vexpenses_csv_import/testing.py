"""Helpers for the plugin's tests (and for plugins that test against csv_import)."""

from vexpenses_core.testing import wait_for

HEADER_LINE = "Nome,E-mail,Data de nascimento"
# Small chunks and batches, so that a file of a few rows already runs in parallel pieces.
SMALL = {"vexpenses.csv_import.chunk_bytes": "120", "vexpenses.csv_import.batch_rows": "3"}


def make_csv(rows, *, header=HEADER_LINE, delimiter=",", newline="\n", bom=False,
             encoding="utf-8"):
    """A CSV file's bytes from rows of fields (quoted when they need it)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=newline)
    if header is not None:
        out.write(header.replace(",", delimiter) + newline)
    writer.writerows(rows)
    data = out.getvalue().encode(encoding)
    return (b"\xef\xbb\xbf" if bom else b"") + data


def people(count, start=0, domain="example.com"):
    return [(f"Pessoa {i}", f"pessoa{i}@{domain}", "1990-01-01")
            for i in range(start, start + count)]


def auth(token):
    return {"Authorization": f"Bearer {token}"}


def upload(testapp, token, content, filename="users.csv", status=201, **fields):
    return testapp.post("/api/v1/user/upload", params=fields,
                        upload_files=[("file", filename, content)],
                        headers=auth(token), status=status)


def import_status(testapp, token, import_id, status=200):
    return testapp.get(f"/api/v1/user/import-status/{import_id}", headers=auth(token),
                       status=status)


def finished_status(testapp, token, import_id, timeout=30):
    """Wait (draining in-process tasks) until the import ends; return its status data."""
    testapp.app.registry.queue.drain()

    def done():
        data = import_status(testapp, token, import_id).json["data"]
        return data if data["status"] in (1, 2) else None

    data = wait_for(done, timeout)
    assert data, f"import {import_id} did not finish"
    return data
