"""The page behind the e-mailed reset link."""

from importlib.resources import files

from pyramid.response import Response

PAGE = (files("vexpenses_core") / "templates" / "reset_password.html").read_text()

# The token is in the URL: never send it on as a Referer, never cache it.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def reset_password_page(request):
    static = request.static_url("vexpenses_core:static/pages/").rstrip("/")
    html = PAGE.replace("{static}", static).replace(
        "{api}", request.route_path("accounts.recover")
    )
    response = Response(html, content_type="text/html", charset="utf-8")
    response.headers.update(HEADERS)
    return response


def includeme(config):
    config.add_route("accounts.reset_page", "/reset-password")
    config.add_view(reset_password_page, route_name="accounts.reset_page", request_method="GET")
    config.add_static_view("vexpenses-static", "vexpenses_core:static/pages/")
