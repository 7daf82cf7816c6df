"""The page behind the e-mailed reset link, in the request's language."""

from ..pages import Page

PAGE = Page("vexpenses_core", "templates/reset_password.html", values=("static", "api"))


def reset_password_page(request):
    # A path, not a URL: the page must not carry the request's Host header.
    static = request.static_path("vexpenses_core:static/pages/").rstrip("/")
    return PAGE.render(request, static=static, api=request.route_path("accounts.recover"))


def includeme(config):
    config.add_route("accounts.reset_page", "/reset-password")
    config.add_view(reset_password_page, route_name="accounts.reset_page", request_method="GET")
    config.add_static_view("vexpenses-static", "vexpenses_core:static/pages/")
