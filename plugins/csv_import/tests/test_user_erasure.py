"""A deleted account (issue 12, LGPD right to erasure): the imports the person made
stay without them, and no stored row of any import keeps their address."""

import json

import sqlalchemy as sa
from sqlalchemy import select
from vexpenses_csv_import.erasure import ERASED, names
from vexpenses_csv_import.models import Import, ImportRowError
from vexpenses_csv_import.testing import auth, finished_status, make_csv, people, upload

from vexpenses_core.testing import make_user

PASSWORD = "a good password"


def stored(app, model, *where):
    session = app.app.registry.dbsession_factory()
    try:
        return session.scalars(select(model).where(*where).order_by(model.id)).all()
    finally:
        session.close()


def everything_stored(app):
    with app.app.registry.dbengine.connect() as conn:
        dump = []
        for name in sa.inspect(conn).get_table_names():
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            dump += [f"{name}: {tuple(row)}" for row in conn.execute(select(table))]
    return "\n".join(dump)


def delete_account(app, token):
    app.delete_json("/api/v1/user/me", {"current_password": PASSWORD}, headers=auth(token),
                    status=200)


def test_names_finds_the_address_in_any_form():
    email = "carla.nunes@bücher.de"
    assert names("carla.nunes@bücher.de", email)
    assert names("  Carla.Nunes@xn--bcher-kva.de ", email)  # another form of it
    assert names("see carla.nunes@bücher.de, team.csv", email)
    assert not names("carla.nunes@bucher.de", email)
    assert not names("ana.carla.nunes@bücher.de", email)  # a longer local part
    assert not names("carla.nunes@bücher.de.br", email)  # a longer domain
    assert not names("Carla Nunes", email) and not names("", email)


def test_hook_erase_user_import_keeps_the_imports_without_the_uploader(app):
    carla_id, carla = make_user(app.app.registry, email="carla@example.com", password=PASSWORD,
                                name="Carla Nunes")
    first = upload(app, carla, make_csv(people(3)), filename="carla@example.com team.csv")
    second = upload(app, carla, make_csv(people(2, start=10)))
    for res in (first, second):
        finished_status(app, carla, res.json["data"]["id"])
    theirs = stored(app, Import, Import.user_id == carla_id)
    assert len(theirs) == 2

    delete_account(app, carla)

    kept = stored(app, Import, Import.id.in_([record.id for record in theirs]))
    assert [record.user_id for record in kept] == [None, None]
    assert [record.status for record in kept] == [1, 1]  # the imports themselves stay
    assert kept[0].original_name == f"{ERASED} team.csv"
    assert kept[1].original_name == "users.csv"
    # the people they created are untouched
    admin = app.get("/api/v1/user?email=pessoa", headers=auth(app.admin_token)).json["data"]
    assert admin["total"] == 5
    assert "carla@example.com" not in everything_stored(app)


def test_hook_erase_user_import_erases_the_rejected_rows_naming_the_address(app):
    carla_id, carla = make_user(app.app.registry, email="carla@example.com", password=PASSWORD,
                                name="Carla Nunes")
    # Ana's import names Carla twice (a duplicate of her account, and a row with
    # a bad date, in another case) and Bia's address once.
    rows = [("Carla Nunes", "carla@example.com", "1990-01-01"),
            ("Carla N.", " CARLA@Example.COM ", "31/02/1990"),
            ("Bia", "bia@example.com", "1991-01-01"),
            *people(2)]
    res = upload(app, app.token, make_csv(rows), send_invitations="false")
    final = finished_status(app, app.token, res.json["data"]["id"])
    assert (final["rejected"], final["duplicates"]) == (1, 2)
    before = {row.row_number: row for row in stored(app, ImportRowError)}
    assert json.loads(before[2].fields)[1] == "carla@example.com"

    delete_account(app, carla)

    after = {row.row_number: row for row in stored(app, ImportRowError)}
    assert set(after) == set(before) == {2, 3, 4}  # the report still counts them
    assert json.loads(after[2].fields) == json.loads(after[3].fields) == []
    assert after[2].errors == before[2].errors and after[2].kind == "duplicate"
    assert after[4].fields == before[4].fields  # Bia's row is not Carla's
    assert ana_import_unchanged(app, res.json["data"]["id"])
    dump = everything_stored(app).lower()
    assert "carla@example.com" not in dump and "carla n" not in dump

    # the error report shows the rows, erased
    report = app.get(f"/api/v1/user/import-status/{res.json['data']['id']}/errors",
                     headers=auth(app.token)).body.decode("utf-8-sig")
    lines = report.splitlines()
    assert lines[1].startswith("2,,,,") and lines[2].startswith("3,,,,")
    assert "bia@example.com" in lines[3]


def ana_import_unchanged(app, import_id):
    [record] = stored(app, Import, Import.id == import_id)
    return record.user_id == app.user_id and record.original_name == "users.csv"


def test_hook_erase_user_import_leaves_other_people_alone(app):
    _, carla = make_user(app.app.registry, email="carla@example.com", password=PASSWORD)
    res = upload(app, app.token, make_csv([("Bia", "bia@example.com", "1991-01-01"),
                                           ("Mariana", "mariana.carla@example.com", "x")]))
    finished_status(app, app.token, res.json["data"]["id"])
    before = [(row.fields, row.errors) for row in stored(app, ImportRowError)]
    assert len(before) == 2
    delete_account(app, carla)
    assert [(row.fields, row.errors) for row in stored(app, ImportRowError)] == before
    assert ana_import_unchanged(app, res.json["data"]["id"])
