"""``/imports``: a page where a person logs in, uploads a CSV and watches it import."""

from importlib.resources import files

from vexpenses_core.pages import html_page

PAGE = (files("vexpenses_csv_import") / "templates" / "imports.html").read_text()


def imports_page(request):
    static = request.static_path("vexpenses_csv_import:static/").rstrip("/")
    html = (PAGE.replace("{static}", static)
            .replace("{login}", request.route_path("accounts.authenticate"))
            .replace("{upload}", request.route_path("csv_import.upload"))
            .replace("{status}", request.route_path("csv_import.status", id="ID")))
    return html_page(html)  # the core's strict page headers


def includeme(config):
    config.add_route("csv_import.page", "/imports")
    config.add_view(imports_page, route_name="csv_import.page", request_method="GET")
    # static/ is served by the core at /static/csv_import/, by convention.
