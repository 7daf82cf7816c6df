"""The pages behind the e-mailed links, in the request's language: password
reset, e-mail verification and the confirmation of a new address."""

from ..pages import Page

PAGE = Page("vexpenses_core", "templates/reset_password.html", values=("static", "api"))
# One template for both links: a button that sends the token, and a verdict.
VERIFY_PAGE = Page("vexpenses_core", "templates/link_token.html", values=("static", "api"),
                   catalogue="verify_email")
CONFIRM_PAGE = Page("vexpenses_core", "templates/link_token.html", values=("static", "api"),
                    catalogue="confirm_email")


def _static(request):
    # A path, not a URL: the page must not carry the request's Host header.
    return request.static_path("vexpenses_core:static/pages/").rstrip("/")


def reset_password_page(request):
    return PAGE.render(request, static=_static(request),
                       api=request.route_path("accounts.recover"))


def verify_email_page(request):
    """Sends the token only when the button is clicked: a GET never uses it."""
    return VERIFY_PAGE.render(request, static=_static(request),
                              api=request.route_path("accounts.verify_email"))


def confirm_email_page(request):
    """Sends the token only when the button is clicked: a GET never uses it."""
    return CONFIRM_PAGE.render(request, static=_static(request),
                               api=request.route_path("accounts.confirm_email"))


def includeme(config):
    config.add_route("accounts.reset_page", "/reset-password")
    config.add_view(reset_password_page, route_name="accounts.reset_page", request_method="GET")
    config.add_route("accounts.verify_page", "/verify-email")
    config.add_view(verify_email_page, route_name="accounts.verify_page", request_method="GET")
    config.add_route("accounts.confirm_page", "/confirm-email")
    config.add_view(confirm_email_page, route_name="accounts.confirm_page", request_method="GET")
    config.add_static_view("vexpenses-static", "vexpenses_core:static/pages/")
