"""The batch writers report exactly the users they inserted, whatever the server offers."""

import datetime

import pytest
from pyramid.scripting import prepare
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from vexpenses_csv_import.writers import (
    LoadDataUserWriter,
    MySQLUserWriter,
    accepts_local_infile,
    infile_engine,
    user_writer,
)

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


# What LOAD DATA's text format gives a meaning to: separators, escapes, \\N (NULL).
NASTY = ["Tab\there", "Line\nbreak", "Carriage\rreturn", "CRLF\r\nend", "Back\\slash",
         "Ends with \\", "\\N", "\\\\N", "N", "\\", "Nul\x00byte", "a\\tb", "\\0\\n\\Z",
         "Ctrl-Z \x1a", "Quotes ' \" `", "Comma, semicolon; pipe |", "Ação 🙂 ß İ", " lead trail ",
         "''", "%s %(x)s {0}"]


def load_data_engine(registry):
    if registry.dbengine.dialect.name != "mysql":
        pytest.skip("LOAD DATA is MariaDB/MySQL's")
    engine = infile_engine(registry.dbengine)
    assert engine is not None, "the test server must have local_infile ON"
    return engine


def test_load_data_round_trips_nasty_values_exactly(testapp):
    registry = testapp.app.registry
    engine = load_data_engine(registry)
    taken_id, _ = make_user(registry, email="taken@example.com", name="Already Here")
    rows = [(f"{value} {i}", f"{i}{value}@example.com", BIRTH) for i, value in enumerate(NASTY)]
    with engine.connect() as connection, Session(bind=connection) as db:
        writer = user_writer(db)
        assert isinstance(writer, LoadDataUserWriter)
        clean = writer.insert(rows)
        # A taken e-mail in the middle: the index skips it, the rest keep their ids.
        mixed = writer.insert([("Caio Dias", "caio@example.com", BIRTH),
                               ("Impostor\t\\N", "taken@example.com", BIRTH),
                               ("Dora\nReis", "dora@example.com", BIRTH)])
        db.commit()
    assert sorted(clean) == sorted(email for _, email, _ in rows)
    assert sorted(mixed) == ["caio@example.com", "dora@example.com"]
    db = registry.dbsession_factory()
    try:
        users = {u.email: u for u in db.scalars(select(User))}
    finally:
        db.close()
    for name, email, _ in rows:
        assert users[email].name == name
    for email, user_id in {**clean, **mixed}.items():
        assert users[email].id == user_id
        assert users[email].password_hash is None and users[email].birth_date == BIRTH
        assert not users[email].is_admin
    assert users["dora@example.com"].name == "Dora\nReis"
    assert (users["taken@example.com"].id, users["taken@example.com"].name) == (
        taken_id, "Already Here")
    assert len(users) == 1 + len(rows) + 2


def test_load_data_sends_the_server_no_file_but_the_batch(testapp, tmp_path):
    """PyMySQL alone would send any file the server names; ours sends none."""
    registry = testapp.app.registry
    engine = load_data_engine(registry)
    secret = tmp_path / "secret.tsv"
    secret.write_text("Leaked Secret\tleak@example.com\t1990-01-31\n")
    with engine.connect() as connection:
        with pytest.raises(OperationalError, match="not the batch"):
            connection.exec_driver_sql(f"LOAD DATA LOCAL INFILE '{secret}' INTO TABLE users "
                                       "(name, email, birth_date)")
        connection.rollback()
        # The connection is still in step with the server.
        assert connection.exec_driver_sql(
            "SELECT COUNT(*) FROM users WHERE email = 'leak@example.com'").scalar() == 0


def test_a_server_refusing_local_infile_is_detected(testapp):
    registry = testapp.app.registry
    engine = load_data_engine(registry)
    assert accepts_local_infile(engine) is True
    # The core's connections do not ask for LOAD DATA LOCAL: the server refuses them,
    # as it refuses everyone when its local_infile is OFF (the same error).
    assert accepts_local_infile(registry.dbengine) is False
    with registry.dbengine.connect() as connection, Session(bind=connection) as db:
        assert type(user_writer(db)) is MySQLUserWriter


def test_columns_go_in_sorted_by_email_with_exact_ids(testapp):
    """The batch path's columns: every writer reports what it inserted; LOAD DATA
    sends them in e-mail order, and falls back to escaping where a value needs it."""
    registry = testapp.app.registry
    make_user(registry, email="taken@example.com", name="Already Here")
    names = ["Zoé Lima", "Impostor", "Ana Reis", "Back\\slash Dias"]
    emails = ["zoe@example.com", "taken@example.com", "ana@example.com", "bd@example.com"]
    dates = ["1990-01-31", "1991-02-01", "1992-03-02", "1993-04-03"]
    results = []
    engines = [registry.dbengine]
    if registry.dbengine.dialect.name == "mysql":
        engines.append(load_data_engine(registry))
    for k, engine in enumerate(engines):
        batches = [(names[:3], [f"{k}{e}" if i != 1 else e for i, e in enumerate(emails[:3])],
                    dates[:3]),
                   (names[3:], [f"{k}{emails[3]}"], dates[3:])]
        with engine.connect() as connection, Session(bind=connection) as db:
            writer = user_writer(db)
            results += [(batch, writer.insert_columns(*batch)) for batch in batches]
            db.commit()
    db = registry.dbsession_factory()
    try:
        users = {u.email: u for u in db.scalars(select(User))}
    finally:
        db.close()
    for (batch_names, batch_emails, batch_dates), inserted in results:
        assert sorted(inserted) == sorted(e for e in batch_emails if e != "taken@example.com")
        for name, email, date in zip(batch_names, batch_emails, batch_dates, strict=True):
            if email in inserted:
                user = users[email]
                assert (user.id, user.name, user.birth_date.isoformat()) == (
                    inserted[email], name, date)
        by_email = sorted(inserted)
        assert [inserted[e] for e in by_email] == sorted(inserted.values())
    assert users["taken@example.com"].name == "Already Here"


def test_a_refusal_is_found_at_start_up_not_at_the_first_import(testapp, monkeypatch, caplog):
    import logging

    import vexpenses_csv_import
    from vexpenses_csv_import import writers

    registry = testapp.app.registry
    asked = []
    monkeypatch.setattr(writers, "_infile_engines", {})
    monkeypatch.setattr(writers, "accepts_local_infile",
                        lambda engine: asked.append(engine) or False)
    with caplog.at_level(logging.WARNING, logger="vexpenses_csv_import.writers"):
        vexpenses_csv_import.vexpenses_app_created(registry=registry)
    if registry.dbengine.dialect.name != "mysql":
        assert asked == [] and caplog.text == ""  # SQLite: nothing to ask
        return
    assert len(asked) == 1 and "refuses LOAD DATA LOCAL INFILE" in caplog.text
    # The answer is kept: a chunk asks no more and writes with INSERTs.
    assert writers.infile_engine(registry.dbengine) is None and len(asked) == 1


def test_a_database_down_at_start_up_is_asked_again_later(testapp, monkeypatch, caplog):
    import logging

    import vexpenses_csv_import
    from vexpenses_csv_import import writers

    registry = testapp.app.registry
    if registry.dbengine.dialect.name != "mysql":
        pytest.skip("LOAD DATA is MariaDB/MySQL's")
    monkeypatch.setattr(writers, "_infile_engines", {})

    def down(engine):
        raise OperationalError("LOAD DATA", {}, Exception(2003, "Can't connect"))

    monkeypatch.setattr(writers, "accepts_local_infile", down)
    with caplog.at_level(logging.WARNING, logger="vexpenses_csv_import.writers"):
        vexpenses_csv_import.vexpenses_app_created(registry=registry)  # does not raise
    assert "the first import will ask again" in caplog.text and writers._infile_engines == {}
    assert caplog.records[-1].levelname == "WARNING"
    # A database not migrated yet (`vexpenses migrate`'s own start-up) is no warning.
    caplog.clear()

    def no_table(engine):
        raise OperationalError("LOAD DATA", {}, Exception(1146, "Table 'users' doesn't exist"))

    monkeypatch.setattr(writers, "accepts_local_infile", no_table)
    with caplog.at_level(logging.INFO, logger="vexpenses_csv_import.writers"):
        vexpenses_csv_import.vexpenses_app_created(registry=registry)
    assert [r.levelname for r in caplog.records] == ["INFO"]
    monkeypatch.setattr(writers, "accepts_local_infile", lambda engine: True)
    engine = writers.infile_engine(registry.dbengine)
    assert engine is not None
    engine.dispose()
