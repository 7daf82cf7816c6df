"""Background tasks: planning an import, processing one of its chunks, and cleaning up.

The service returns what should happen next; these tasks, and the upload
view and the command through :func:`queue_import`, queue it.
"""

from vexpenses_core import task
from vexpenses_core.transactions import run_in_transaction

from .processing import ImportProcessor
from .services import ImportService


def queue_import(request, import_id):
    """Queue a new import's planning once the request commits.

    Each upload also clears out expired files: disk use cannot grow without it.
    """
    request.enqueue(plan, import_id)
    request.enqueue(remove_old_files)


@task(name="csv_import.plan")
def plan(request, import_id):
    planned = ImportProcessor(request).plan(import_id)
    for index in planned.chunks:
        request.enqueue(process_chunk, import_id, index)
    if planned.finished:
        request.enqueue(remove_old_files)


# Commits once per batch: the service runs each batch in a transaction of its own.
@task(name="csv_import.process_chunk", own_transactions=True)
def process_chunk(request, import_id, chunk_index):
    def queue_chunk(index):  # in the batch's transaction: through the outbox
        request.enqueue(process_chunk, import_id, index)

    if ImportProcessor(request).process_chunk(import_id, chunk_index, queue_chunk):
        # Sent through the outbox, like every task queued in a transaction.
        run_in_transaction(request.tm, lambda: request.enqueue(remove_old_files))


@task(name="csv_import.remove_old_files")
def remove_old_files(request):
    ImportService(request).remove_old_files()
