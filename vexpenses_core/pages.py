"""HTML pages served beside the API (the reset page, plugins' pages).

Every page gets the same strict headers: its own scripts and styles only,
no Referer (links may carry tokens), never cached. A :class:`Page` is also
in the request's language (see :mod:`vexpenses_core.i18n`).
"""

import html
import json
import re
from importlib.resources import files

from pyramid.response import Response

from .i18n import Catalogue, html_language
from .settings import ConfigurationError

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


def html_page(html, extra_csp=None, language=None):
    """A ``text/html`` response with the page headers.

    ``extra_csp`` adds directives to the policy (e.g. ``"img-src 'self'"``),
    never loosening the ones above. ``language`` (``pt_BR``) is sent as
    ``Content-Language``, with ``Vary: Accept-Language``.
    """
    response = Response(html, content_type="text/html", charset="utf-8")
    response.headers.update(PAGE_HEADERS)
    if language:
        response.headers["Content-Language"] = html_language(language)
        response.vary = ("Accept-Language",)
    if extra_csp:
        response.headers["Content-Security-Policy"] = f"{CSP}; {extra_csp}"
    return response


PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _json_for_script(value):
    """JSON that cannot end its ``<script type="application/json">`` block."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Page:
    """A page in several languages: a template and its catalogue.

    ``template`` is a path inside ``package``; the catalogue is the
    ``<name>.<language>.json`` files beside it (``reset_password.html`` has
    ``reset_password.en.json`` and ``reset_password.pt_BR.json``). In the
    template, ``{{key}}`` is a string of the catalogue or one of
    ``values``, HTML-escaped; ``{{lang}}`` is the language (``pt-BR``) and
    ``{{messages}}`` the whole catalogue as JSON, for a
    ``<script type="application/json">`` block that the page's script
    reads (the CSP runs no inline script). A placeholder that names
    nothing stops start-up. Pages that differ only in their words share a
    template: ``catalogue`` names theirs (``verify_email`` for
    ``verify_email.<language>.json`` beside the template).
    """

    def __init__(self, package, template, values=(), catalogue=None):
        folder, _, filename = template.rpartition("/")
        self.text = (files(package) / template).read_text(encoding="utf-8")
        self.catalogue = Catalogue(package, folder, catalogue or filename.rsplit(".", 1)[0])
        self.values = set(values)
        strings = {key for key, value in self.catalogue.messages[self.catalogue.source].items()
                   if isinstance(value, str)}
        unknown = set(PLACEHOLDER.findall(self.text)) - strings - self.values - {"lang",
                                                                                  "messages"}
        if unknown:
            raise ConfigurationError(
                f"{package}: {template} uses {', '.join(sorted(unknown))}, which "
                f"neither its catalogue nor its values hold")

    def render(self, request, extra_csp=None, **values):
        """The page in the request's language, as a response with the page headers."""
        if set(values) != self.values:
            raise TypeError(f"render() needs exactly these values: {sorted(self.values)}")
        language = self.catalogue.language(request)
        messages = self.catalogue.messages[language]
        special = {"lang": html_language(language), "messages": _json_for_script(messages)}

        def fill(match):
            key = match[1]
            if key == "messages":
                return special[key]
            value = values[key] if key in values else special.get(key, messages.get(key))
            return html.escape(str(value), quote=True)

        return html_page(PLACEHOLDER.sub(fill, self.text), extra_csp, language)
