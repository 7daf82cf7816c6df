"""The CSV import API under /api/v1/user, as docs/csv_import.md's "API" section says."""

from pyramid.response import FileIter, Response

from vexpenses_core.api import FORM_TYPES, form_fields, success
from vexpenses_core.schemas import validate

from . import presenters
from .schemas import Upload
from .services import UPLOAD_MESSAGE, ImportService
from .tasks import queue_import

UPLOAD_PATH = "/api/v1/user/upload"


def upload(request):
    fields = form_fields(request) if request.content_type in FORM_TYPES else {}
    body = validate(Upload, dict(fields))
    field = body.file
    service = ImportService(request)
    try:
        record = service.create(field.file, field.filename, request.identity.id,
                                body.send_invitations, requester=request.identity)
    finally:
        field.file.close()  # webob's spooled copy of the part
    queue_import(request, record.id)
    request.pm.hook.vexpenses_import_uploaded(request=request, import_id=record.id)
    return success(request, UPLOAD_MESSAGE, presenters.upload_dict(record), status=201)


def import_status(request):
    service = ImportService(request)
    record = service.visible(request.matchdict["id"], request.identity)
    request.pm.hook.vexpenses_import_viewed(request=request, import_id=record.id)
    data = presenters.status_dict(request, record, service.live(record))
    return success(request, UPLOAD_MESSAGE, data)


def delete_import(request):
    service = ImportService(request)
    record = service.visible(request.matchdict["id"], request.identity)
    service.soft_delete(record)
    data = presenters.status_dict(request, record, service.live(record))
    return success(request, "Import deleted", data)


def error_report(request):
    service = ImportService(request)
    record = service.visible(request.matchdict["id"], request.identity)
    report = presenters.error_report(request.dbsession, record)
    response = Response(content_type="text/csv", charset="utf-8")
    response.app_iter = FileIter(report)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="import-{record.id}-errors.csv"')
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def includeme(config):
    limit = config.registry.csv_import_options["max_upload_bytes"]
    config.add_route("csv_import.upload", UPLOAD_PATH)
    config.add_route("csv_import.status", "/api/v1/user/import-status/{id}")
    config.add_route("csv_import.errors", "/api/v1/user/import-status/{id}/errors")
    # The multipart envelope around the file needs a little room above the limit.
    config.add_view(upload, route_name="csv_import.upload", request_method="POST",
                    renderer="json", permission="authenticated",
                    max_body_bytes=limit + 64 * 1024)
    config.add_view(import_status, route_name="csv_import.status", request_method="GET",
                    renderer="json", permission="authenticated")
    config.add_view(delete_import, route_name="csv_import.status", request_method="DELETE",
                    renderer="json", permission="authenticated")
    config.add_view(error_report, route_name="csv_import.errors", request_method="GET",
                    permission="authenticated")
