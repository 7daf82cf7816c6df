"""HTML pages served beside the API (the reset page, plugins' pages).

Every page gets the same strict headers: its own scripts and styles only,
no Referer (links may carry tokens), never cached.
"""

from pyramid.response import Response

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def html_page(html):
    """A ``text/html`` response with the page headers."""
    response = Response(html, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    return response
