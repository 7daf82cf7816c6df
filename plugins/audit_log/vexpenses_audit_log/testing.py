"""Helpers for the audit_log tests (and for plugins that test against it)."""

import sqlalchemy as sa

from .models import AuditLogDetails, AuditLogEntry

PASSWORD = "correct-horse-battery-1"


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def settle(testapp, timeout=10):
    """Wait for in-process tasks, then write every buffered record (and Redis's)."""
    registry = testapp.app.registry
    assert registry.queue.drain(timeout), "in-process tasks did not finish"
    registry.audit_log.flush(drain=True)


def stored_rows(testapp):
    """Every stored row as a dict of its columns and its details' (None when
    it has no details row), in chain order."""
    engine = testapp.app.registry.dbengine
    entries, details = AuditLogEntry.__table__, AuditLogDetails.__table__
    columns = [column for column in details.c if column.name != "entry_id"]
    with engine.connect() as conn:
        result = conn.execute(
            sa.select(entries, *columns)
            .select_from(entries.outerjoin(details, details.c.entry_id == entries.c.id))
            .order_by(entries.c.id))
        return [dict(row._mapping) for row in result]


def register(testapp, email, password=PASSWORD, name="Ana Souza", **headers):
    body = {"name": name, "email": email, "password": password,
            "password_confirmation": password, "birth_date": "1990-05-17"}
    return testapp.post_json("/api/v1/user/register", body, status=201, headers=headers)


def login(testapp, email, password=PASSWORD, **headers):
    res = testapp.post_json("/api/v1/user/authenticate", {"email": email, "password": password},
                            status=201, headers=headers)
    return res.json["data"]


def write_records(registry, count, age=None, hook="vexpenses_greeting_sent"):
    """Append ``count`` job rows made ``age`` (a timedelta) ago, straight to the chain."""
    import datetime

    from vexpenses_core.tasks import make_task_request

    request = make_task_request(registry, "test-records")
    moment = datetime.datetime.now(datetime.UTC) - (age or datetime.timedelta())
    records = [
        registry.audit_log_recorder.build(
            hook, request, {"request": request, "number": number},
            now=moment + datetime.timedelta(microseconds=number),
        )
        for number in range(count)
    ]
    return registry.audit_log.writer.append(records)
