"""Deleting an account leaves no trace of the person, and an audit log that verifies
(issue 12, LGPD right to erasure), end to end.

All plugins enabled, on SQLite and MariaDB (the database_url fixture), without
Redis and with a real one, mail delivered to a real aiosmtpd server. A person
registers, logs in, fails a login, changes their profile and their address,
asks for a reset link, exports their data, is looked up by an admin (by id and with an e-mail
filter), uploads a CSV that lists themselves again (as does an admin's), and
gets mail; then deletes their account, or an admin deletes it. Afterwards
every column of every table is read: the address and the names appear
nowhere (nor in any Redis key or value, with Redis), and ``vexpenses audit
verify`` (the real command, in a subprocess) passes.
"""

import os
import pathlib
import subprocess
import sys
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from vexpenses_audit_log.testing import settle
from vexpenses_csv_import.testing import finished_status, make_csv, upload
from vexpenses_mailer.testing import SMTPSink, links

from vexpenses_core.testing import JWT_SECRET, bearer, make_user, wait_for, write_ini

PASSWORD = "correct horse battery"
PLUGINS = "csv_import audit_log mailer"
VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))
# Unusual enough that any hit in the database is theirs.
EMAIL = "Zuleica.Quintela@Example.com"
NEW_EMAIL = "zq.nova@example.org"  # the address they move to
NAMES = ("Zuleica Quintela", "Zuleica Erasmo Quintela")


@pytest.fixture(scope="module")
def smtp_server():
    with SMTPSink() as sink:
        yield sink


@pytest.fixture(params=["embedded", "redis"])
def app(request, make_testapp, smtp_server):
    """Without Redis, and with a real one: the audit records then wait in a Redis
    list, and the identity cache and limits live there. Tasks run in process."""
    extra = {}
    if request.param == "redis":
        extra = {"vexpenses.redis_url": request.getfixturevalue("redis_url"),
                 "vexpenses.tasks.broker": "inprocess"}
    app = make_testapp(**{
        "vexpenses.plugins": PLUGINS,
        "vexpenses.upload_dir": str(request.getfixturevalue("tmp_path") / "uploads"),
        "vexpenses.mailer.backend": "smtp",
        "vexpenses.mailer.smtp_url": f"smtp://127.0.0.1:{smtp_server.port}?timeout=5",
        "vexpenses.mailer.mail_from": "Equipe vexpenses <no-reply@vexpenses.test>",
        **extra})
    yield app
    settle(app)  # no audit row of this test may land in the next one's tables


def mail_to(smtp_server, address):
    return [m for m in smtp_server.messages if address.lower() in str(m["To"]).lower()]


def every_value(engine):
    """``{table: text of every column of every row}``, lower case."""
    found = {}
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            rows = conn.execute(sa.text(f"SELECT * FROM {table}")).all()
            found[table] = "\n".join(
                (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
                for row in rows for value in row).lower()
    return found


def audit_verify(app, tmp_path):
    """``vexpenses audit verify``, the real command, against the test database."""
    settings = app.app.registry.settings
    env = {**os.environ,
           "VEXPENSES_ENV": "testing",
           "VEXPENSES_DATABASE_URL": settings["vexpenses.database_url"],
           "VEXPENSES_REDIS_URL": "",
           "VEXPENSES_PLUGINS": PLUGINS,
           "VEXPENSES_JWT_SECRET": JWT_SECRET,
           "VEXPENSES_AUTO_MIGRATE": "false"}
    ini = str(write_ini(tmp_path))
    return subprocess.run([VEXPENSES, "audit", "verify", ini], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("by", ["self", "admin"])
def test_a_deleted_account_leaves_no_trace_and_the_audit_log_verifies(
        app, smtp_server, tmp_path, by):
    registry = app.app.registry
    smtp_server.clear()
    admin, admin_token = make_user(registry, email="root@example.com", is_admin=True,
                                   name="Root Admin", password=PASSWORD)
    body = {"name": NAMES[0], "email": EMAIL, "password": PASSWORD,
            "password_confirmation": PASSWORD, "birth_date": "1990-05-17"}
    user_id = app.post_json("/api/v1/user/register", body, status=201).json["data"]["id"]
    address = EMAIL.lower()  # stored canonical
    login = {"email": EMAIL, "password": PASSWORD}
    token = app.post_json("/api/v1/user/authenticate", login, status=201).json["data"]["token"]
    app.post_json("/api/v1/user/authenticate", {"email": EMAIL, "password": "wrong one"},
                  status=401)
    app.patch_json("/api/v1/user/me", {"name": NAMES[1]}, headers=bearer(token), status=200)
    app.post_json("/api/v1/user/forgot-password", {"email": EMAIL}, status=200)
    app.get("/api/v1/user/me/export", headers=bearer(token), status=200)
    app.get("/api/v1/user", {"email": EMAIL}, headers=bearer(admin_token), status=200)
    app.get(f"/api/v1/user/{user_id}", headers=bearer(admin_token), status=200)
    # They move to another address: both are theirs, both must go.
    app.post_json("/api/v1/user/me/email", {"email": NEW_EMAIL, "current_password": PASSWORD},
                  headers=bearer(token), status=202)
    settle(app)
    confirm = wait_for(lambda: [link for m in mail_to(smtp_server, NEW_EMAIL)
                                for link in links(m.text) if "confirm-email" in link], 30)
    assert confirm, "no confirmation link reached the new address"
    link_token = parse_qs(urlsplit(confirm[0]).query)["token"][0]
    app.post_json("/api/v1/user/confirm-email", {"token": link_token}, status=200)
    content = make_csv([("Caio Prado", "caio@example.com", "1991-02-03"),
                        (NAMES[1], NEW_EMAIL, "1990-05-17")])  # themselves: a duplicate
    import_id = upload(app, token, content, filename="people.csv").json["data"]["id"]
    assert finished_status(app, token, import_id)["status"] in (1, 2)
    # an admin's import that lists them too: someone else's rows that quote them
    content = make_csv([("Davi Reis", "davi@example.com", "1992-03-04"),
                        (NAMES[0], NEW_EMAIL.upper(), "1990-05-17")])
    admin_import = upload(app, admin_token, content, filename="team.csv").json["data"]["id"]
    assert finished_status(app, admin_token, admin_import)["status"] in (1, 2)
    settle(app)
    # welcome, verify, reset and the change notice; the confirmation link
    assert wait_for(lambda: len(mail_to(smtp_server, address)) >= 4, 30)
    engine = registry.dbengine
    before = every_value(engine)
    # The test sees the person where they were held, so it can see them gone.
    for table in ("audit_log_details", "mail_deliveries"):
        assert address in before[table], table
    for table in ("users", "audit_log_details", "mail_deliveries", "import_errors"):
        assert NEW_EMAIL in before[table], table
    assert NAMES[1].lower() in before["users"]

    if by == "self":
        app.delete_json("/api/v1/user/me", {"current_password": PASSWORD},
                        headers=bearer(token), status=200)
    else:
        app.delete(f"/api/v1/user/{user_id}", headers=bearer(admin_token), status=200)
    settle(app)
    goodbye = wait_for(lambda: [m for m in mail_to(smtp_server, NEW_EMAIL)
                                if "account" in m["Subject"] or "conta" in m["Subject"]], 30)
    assert goodbye, "the account-deleted e-mail was not sent"
    settle(app)  # the mail task's own hook calls

    after = every_value(engine)
    left = {(trace, table) for table, text in after.items()
            for trace in (address, NEW_EMAIL, *(name.lower() for name in NAMES))
            if trace in text}
    assert not left, f"still held (trace, table): {sorted(left)}"
    # What others need stays: the import (without its owner), Caio, the admin.
    assert "people.csv" in after["imports"] and "caio@example.com" in after["users"]
    assert "team.csv" in after["imports"] and "davi@example.com" in after["users"]
    assert "root@example.com" in after["users"]

    redis = registry.redis
    if redis is not None:  # the identity cache, the limits, the audit relay
        prefix = registry.settings["vexpenses.redis_prefix"]
        keys = list(redis.scan_iter(match=prefix + "*", count=1000))
        assert keys, "nothing in Redis: this check would prove nothing"
        for key in keys:
            values = [key]
            kind = redis.type(key)
            if kind == b"string":
                values.append(redis.get(key))
            elif kind == b"list":
                values += redis.lrange(key, 0, -1)
            elif kind == b"hash":
                values += [v for pair in redis.hgetall(key).items() for v in pair]
            elif kind == b"zset":
                values += redis.zrange(key, 0, -1)
            elif kind == b"set":
                values += list(redis.smembers(key))
            text = b"\n".join(v for v in values if v).decode("utf-8", "replace").lower()
            for trace in (address, NEW_EMAIL, NAMES[1].lower()):
                assert trace not in text, key

    result = audit_verify(app, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("audit log OK: ")
    assert "rows with erased details" in result.stdout
