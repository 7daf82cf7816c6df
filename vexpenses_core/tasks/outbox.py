"""The task outbox: with the Redis broker, a task queued in a transaction is also
written to the ``task_outbox`` table in it, and the row deleted once sent.

If the send after commit fails (Redis down at that moment, or the process
dies between commit and send), the row stays and the worker supervisor
sends it later (:func:`resend`): a committed request never loses its task.
"""

import datetime
import json
import logging

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, select

from ..db import utcnow
from ..logging import request_id_var
from ..transactions import after_commit

log = logging.getLogger(__name__)

#: Outbox rows are sent and deleted in batches of this many.
OUTBOX_BATCH = 500


def store(queue, request, txn, name, args, kwargs):
    """Write the task to the outbox in ``txn``; it is sent once ``txn`` commits."""
    from ..models import TaskOutbox

    row = TaskOutbox(task=name, payload=json.dumps(
        {"args": list(args), "kwargs": kwargs, "request_id": request_id_var.get() or ""}))
    request.dbsession.add(row)
    try:
        rows = txn.data(queue)
    except KeyError:  # the transaction's first task: one hook sends them all
        rows = []
        txn.set_data(queue, rows)
        after_commit(request, send, queue, rows)
    rows.append(row)


def send(queue, rows):
    """Send the rows a transaction stored, after it committed; delete those sent."""
    sent = []
    try:
        for row in rows:
            send_stored(queue, row.task, row.payload)
            sent.append(row.id)
    except Exception:
        log.warning("could not send task %s after commit; it stays in the outbox and the "
                    "worker supervisor sends it later", rows[len(sent)].task, exc_info=True)
    if not sent:  # Redis is down: no connection for a delete of nothing
        return
    try:
        with queue.registry.dbengine.begin() as conn:
            delete(conn, sent)
    except Exception:  # sent twice later, which tasks must cope with anyway
        log.warning("could not delete %d sent tasks from the outbox", len(sent),
                    exc_info=True)


def send_stored(queue, name, payload):
    """Send a task as the outbox stored it (``payload`` is its JSON text)."""
    data = json.loads(payload)
    return queue._send(name, data["args"], data["kwargs"], data["request_id"])


def resend(queue, older_than):
    """Send outbox rows older than ``older_than`` seconds; return how many were sent.

    Younger rows are left to the after-commit send that is probably under
    way. Stops at the first failed send (Redis is likely down still); the
    rows sent so far are deleted.
    """
    from ..models import TaskOutbox

    table = TaskOutbox.__table__
    engine = queue.registry.dbengine
    cutoff = utcnow() - datetime.timedelta(seconds=older_than)
    # Only rows whose task is registered: rows kept for a disabled plugin
    # would otherwise fill every batch and stall the rows behind them.
    registered = queue.task_names()
    query = (select(table.c.id, table.c.task, table.c.payload)
             .where(table.c.created_at < cutoff, table.c.task.in_(registered))
             .order_by(table.c.id).limit(OUTBOX_BATCH))
    if engine.dialect.name == "mysql":  # two supervisors never send the same row
        query = query.with_for_update(skip_locked=True)
    sent = []
    with engine.begin() as conn:
        try:
            for row in conn.execute(query).all():
                try:
                    send_stored(queue, row.task, row.payload)
                except LookupError:  # its plugin is disabled; keep it for when it returns
                    log.error("outbox row %d: no task named %r is registered",
                              row.id, row.task)
                    continue
                sent.append(row.id)
        finally:
            delete(conn, sent)
    if sent:
        log.warning("sent %d tasks that had stayed in the outbox", len(sent))
    _report_kept(engine, table, cutoff, registered)
    return len(sent)


def _report_kept(engine, table, cutoff, registered):
    """Say which rows wait for a task no enabled plugin registers."""
    with engine.connect() as conn:
        kept = conn.execute(
            select(table.c.task, func.count()).where(
                table.c.created_at < cutoff, table.c.task.not_in(registered))
            .group_by(table.c.task)).all()
    for name, count in kept:
        log.error("%d outbox rows wait for the task %r, which no enabled plugin registers",
                  count, name)


def delete(conn, ids):
    from ..models import TaskOutbox

    table = TaskOutbox.__table__
    for start in range(0, len(ids), OUTBOX_BATCH):
        conn.execute(sql_delete(table).where(table.c.id.in_(ids[start:start + OUTBOX_BATCH])))
