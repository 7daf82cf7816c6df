"""``/imports``: a page where a person logs in, uploads a CSV and watches it import.

In the request's language, the way every page is: its strings are
``templates/imports.<language>.json`` (see ``vexpenses_core.pages.Page``).
"""

from vexpenses_core.pages import Page

PAGE = Page("vexpenses_csv_import", "templates/imports.html",
            values=("static", "login", "upload", "status"))


def imports_page(request):
    return PAGE.render(  # the core's strict page headers
        request,
        static=request.static_path("vexpenses_csv_import:static/").rstrip("/"),
        login=request.route_path("accounts.authenticate"),
        upload=request.route_path("csv_import.upload"),
        status=request.route_path("csv_import.status", id="ID"))


def includeme(config):
    config.add_route("csv_import.page", "/imports")
    config.add_view(imports_page, route_name="csv_import.page", request_method="GET")
    # static/ is served by the core at /static/csv_import/, by convention.
