"""``/imports``: a page where a person logs in, uploads a CSV and watches it import."""

from importlib.resources import files

from pyramid.response import Response

PAGE = (files("vexpenses_csv_import") / "templates" / "imports.html").read_text()

# The same strict policy as the core's reset page: our own script and styles only.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def imports_page(request):
    static = request.static_path("vexpenses_csv_import:static/").rstrip("/")
    html = (PAGE.replace("{static}", static)
            .replace("{login}", request.route_path("accounts.authenticate"))
            .replace("{upload}", request.route_path("csv_import.upload"))
            .replace("{status}", request.route_path("csv_import.status", id="ID")))
    response = Response(html, content_type="text/html", charset="utf-8")
    response.headers.update(HEADERS)
    return response


def includeme(config):
    config.add_route("csv_import.page", "/imports")
    config.add_view(imports_page, route_name="csv_import.page", request_method="GET")
    config.add_static_view("csv-import-static", "vexpenses_csv_import:static/")
