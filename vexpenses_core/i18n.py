"""Languages: which one a request gets, and the strings of a page in each.

One negotiation for everything the service says to a person: the core's
pages, plugins' pages and the mailer's e-mails. Languages are written as
``pt_BR`` or ``en`` (as in the settings and the template folders); in an
``Accept-Language`` header and in HTML they are ``pt-BR`` and ``en``.

A page's strings are a small catalogue: one JSON object per language,
``<name>.<language>.json`` beside the page's template. A value is a string,
or an object: ``{"one": ..., "other": ...}`` for a count (``{n}`` is the
count; "one" is for exactly 1, in both our languages), or a table the
page's script reads (e.g. the API's English messages it translates).
English (``en``) is every catalogue's source: it must exist, every other
language holds exactly its keys, and it is the page's language when
``vexpenses.language`` names one the page lacks.
"""

import json
import re
from importlib.resources import files

from webob.acceptparse import create_accept_language_header

from .settings import ConfigurationError

LANGUAGE_FILE = re.compile(r"(?P<name>[\w-]+)\.(?P<language>[a-z]{2,3}(?:_[A-Z]{2})?)\.json")


def _parsed(accept_language):
    """``[(tag, quality), ...]`` from a request, a WebOb header object, a string or None."""
    if accept_language is None or isinstance(accept_language, str):
        accept_language = create_accept_language_header(accept_language)
    elif hasattr(accept_language, "accept_language"):  # a request
        accept_language = accept_language.accept_language
    # An absent or invalid header has nothing parsed: it names no language.
    return list(getattr(accept_language, "parsed", None) or ())


def negotiate(accept_language, languages, default):
    """The best of ``languages`` for an ``Accept-Language``, else ``default``.

    ``accept_language`` is a request, WebOb's header object, the header's
    text or ``None``. Tags are tried by quality (ties in the header's
    order): ``pt-BR`` picks ``pt_BR`` and ``pt`` or ``pt-PT`` the first
    ``pt_*`` language; ``en-GB`` picks ``en``. ``q=0`` refuses a tag, and
    ``*`` accepts the default (or, when the default was refused, any
    language not refused). A missing, empty or malformed header gives the
    default; nothing here raises.
    """
    def candidates(tag):
        primary, _, region = tag.lower().partition("-")
        exact = [lang for lang in languages if lang.lower() == f"{primary}_{region}"] \
            if region else [lang for lang in languages if lang.lower() == primary]
        same = sorted(lang for lang in languages if lang.split("_")[0].lower() == primary)
        return exact, same

    parsed = _parsed(accept_language)
    # Refusals first: "en;q=0" holds wherever it stands in the header.
    refused = set()
    for tag, quality in parsed:
        if quality <= 0 and tag != "*":
            exact, same = candidates(tag)
            refused.update(exact if "-" in tag else same)
    for tag, quality in sorted(parsed, key=lambda item: -item[1]):
        if quality <= 0:
            break
        if tag == "*":
            if default not in refused:
                return default
            return next((lang for lang in sorted(languages) if lang not in refused), default)
        exact, same = candidates(tag)
        for language in exact + same:
            if language not in refused:
                return language
    return default


def html_language(language):
    """``pt_BR`` as HTML and HTTP write it: ``pt-BR``."""
    return language.replace("_", "-")


class Catalogue:
    """The strings of one page, in each language it has.

    ``package`` and ``folder`` locate the files, ``<name>.<language>.json``.
    Every language must hold the same keys as every other: a string missing
    in one language would show nothing, so it stops start-up instead.
    """

    def __init__(self, package, folder, name, source="en"):
        self.name = name
        self.messages = {}
        for entry in (files(package) / folder).iterdir():
            match = LANGUAGE_FILE.fullmatch(entry.name)
            if match and match["name"] == name:
                self.messages[match["language"]] = json.loads(entry.read_text(encoding="utf-8"))
        self.languages = sorted(self.messages)
        if source not in self.messages:
            raise ConfigurationError(f"{package}: {folder}/{name}.{source}.json is missing")
        keys = set(self.messages[source])
        for language, messages in self.messages.items():
            if set(messages) != keys:
                difference = sorted(keys.symmetric_difference(messages))
                raise ConfigurationError(
                    f"{package}: {folder}/{name}.{language}.json and {name}.{source}.json "
                    f"differ in: {', '.join(difference)}")
        self.source = source

    def default(self, setting):
        """This catalogue's language for ``vexpenses.language``: the same or the
        closest (``pt_PT`` gives ``pt_BR``), else the source language."""
        return negotiate(html_language(setting), self.languages, self.source)

    def language(self, request):
        """The request's language: its ``Accept-Language``, else the setting."""
        setting = request.registry.settings.get("vexpenses.language") or self.source
        return negotiate(request, self.languages, self.default(setting))
