"""The batch writers report exactly the users they inserted, whatever the server offers."""

import datetime

import pytest
from pyramid.scripting import prepare
from sqlalchemy import select
from vexpenses_csv_import.writers import MySQLUserWriter, user_writer

from vexpenses_core.models import User
from vexpenses_core.testing import make_user

BIRTH = datetime.date(1990, 1, 31)
HOSTILE = "Ana O'Neil \\' \"x\" \\n; DROP TABLE users; -- 100%s"


@pytest.mark.parametrize("consecutive, returning", [
    (True, True),  # MariaDB's defaults: ids from LAST_INSERT_ID()
    (False, True),  # auto-increment lock mode 2: a SELECT, or RETURNING after a duplicate
    (False, False),  # MySQL: no RETURNING, rows one by one after a duplicate
])
def test_writer_reports_exactly_the_rows_it_inserted(testapp, consecutive, returning):
    registry = testapp.app.registry
    taken_id, _ = make_user(registry, email="taken@example.com", name="Already Here")
    env = prepare(registry=registry)
    request = env["request"]
    try:
        with request.tm:
            writer = user_writer(request.dbsession)
            if isinstance(writer, MySQLUserWriter):
                writer.consecutive, writer.returning = consecutive, returning
            clean = writer.insert([("Bia Lima", "bia@example.com", BIRTH),
                                   (HOSTILE, "o'neil@example.com", BIRTH)])
            mixed = writer.insert([("Caio Dias", "caio@example.com", BIRTH),
                                   ("Impostor", "taken@example.com", BIRTH),
                                   ("Dora Reis", "dora@example.com", BIRTH)])
    finally:
        env["closer"]()
    assert sorted(clean) == ["bia@example.com", "o'neil@example.com"]
    assert sorted(mixed) == ["caio@example.com", "dora@example.com"]
    db = registry.dbsession_factory()
    try:
        users = {u.email: u for u in db.scalars(select(User))}
    finally:
        db.close()
    for email, user_id in {**clean, **mixed}.items():
        assert users[email].id == user_id
        assert users[email].password_hash is None and users[email].birth_date == BIRTH
    assert users["o'neil@example.com"].name == HOSTILE
    assert (users["taken@example.com"].id, users["taken@example.com"].name) == (
        taken_id, "Already Here")
