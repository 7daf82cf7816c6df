"""HTML pages served beside the API (the reset page, plugins' pages).

Every page gets the same strict headers: its own scripts and styles only,
no Referer (links may carry tokens), never cached.
"""

from pyramid.response import Response

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def html_page(html, extra_csp=None):
    """A ``text/html`` response with the page headers.

    ``extra_csp`` adds directives to the policy (e.g. ``"img-src 'self'"``),
    never loosening the ones above.
    """
    response = Response(html, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    if extra_csp:
        response.headers["Content-Security-Policy"] = f"{CSP}; {extra_csp}"
    return response
