"""The request id in every log line.

``%(request_id)s`` may be used in any log format: it holds the id of the
request (or task) the line was written for, or ``-`` outside one.
"""

import contextvars
import logging

request_id_var = contextvars.ContextVar("vexpenses_request_id", default=None)

_installed = False


def install_record_factory():
    """Give every log record a ``request_id`` attribute. Safe to call twice."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        record.request_id = request_id_var.get() or "-"
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
