"""Background tasks: planning an import, and processing one of its chunks."""

from vexpenses_core import task

from .services import ImportService


@task(name="csv_import.plan")
def plan(request, import_id):
    ImportService(request).plan(import_id)


# Commits once per batch: the service runs each batch in a transaction of its own.
@task(name="csv_import.process_chunk", own_transactions=True)
def process_chunk(request, import_id, chunk_index):
    ImportService(request).process_chunk(import_id, chunk_index)


@task(name="csv_import.remove_old_files")
def remove_old_files(request):
    ImportService(request).remove_old_files()
