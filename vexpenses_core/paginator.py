"""A paginator shaped like Laravel's ``LengthAwarePaginator``.

Clients of the original app read ``current_page``, ``last_page``,
``links`` and friends; this builds exactly that from a page of items and a
total, keeping the request's filters in every URL.
"""

import math
from typing import Annotated
from urllib.parse import urlencode

from pydantic import BeforeValidator, Field, WithJsonSchema

from .openapi import Paginator as PageModel
from .schemas import Query

PER_PAGE = 10
ON_EACH_SIDE = 3
# Far past any real list, and small enough that OFFSET never overflows SQL integers.
MAX_PAGE = 1_000_000_000


def to_page(value):
    """Anything that is not a positive integer is page 1, as in Laravel; never an error."""
    try:
        page = int(value)
    except (TypeError, ValueError):
        return 1
    return min(page, MAX_PAGE) if page >= 1 else 1


# The schema accepts any value, since any value is a page.
Page = Annotated[int, BeforeValidator(to_page),
                 WithJsonSchema({"type": ["integer", "string"]}),
                 Field(description="The page, from 1. Anything that is not a positive integer "
                                   "is page 1, as in Laravel; a page past the last is empty.")]


class PageQuery(Query):
    """A paginated list's query; a list with filters subclasses it."""

    page: Page = 1


def page_number(request, name="page"):
    """The requested page (``?page=``), for a list without a query model."""
    return to_page(request.params.get(name, 1))


def offset_for(page, per_page=PER_PAGE):
    return (page - 1) * per_page


class Paginator:
    def __init__(self, request, items, total, page, per_page=PER_PAGE, filters=None):
        """``filters`` are the query parameters that every page URL keeps."""
        self.items = list(items)
        if per_page < 1 or len(self.items) > per_page:
            raise ValueError(f"a page of {per_page} cannot hold {len(self.items)} items")
        self.total = total
        self.page = page
        self.per_page = per_page
        # Absolute, as Laravel's are, but from the configured public URL: the
        # Host header is the client's to forge and would be echoed to others.
        self.path = request.registry.settings["vexpenses.base_url"] + request.path_info
        self.filters = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
        self.last_page = max(math.ceil(total / per_page), 1)

    def url(self, page):
        return self.url_with(page=page)

    def url_with(self, **params):
        """This list's URL with its filters and ``params`` (e.g. a page or cursor)."""
        return f"{self.path}?{urlencode({**self.filters, **params})}"

    def to_dict(self):
        """The page, dumped from the model the OpenAPI document publishes."""
        count = len(self.items)
        first = offset_for(self.page, self.per_page) + 1
        return PageModel.model_validate({
            "current_page": self.page,
            "data": self.items,
            "first_page_url": self.url(1),
            "from": first if count else None,
            "last_page": self.last_page,
            "last_page_url": self.url(self.last_page),
            "links": self.links(),
            "next_page_url": self.url(self.page + 1) if self.page < self.last_page else None,
            "path": self.path,
            "per_page": self.per_page,
            "prev_page_url": self.url(self.page - 1) if self.page > 1 else None,
            "to": first + count - 1 if count else None,
            "total": self.total,
        }).model_dump(by_alias=True)

    def links(self):
        links = [
            {
                "url": self.url(self.page - 1) if self.page > 1 else None,
                "label": "&laquo; Previous",
                "active": False,
            }
        ]
        for part in self._window():
            if part is None:
                links.append({"url": None, "label": "...", "active": False})
            else:
                links.append(
                    {"url": self.url(part), "label": str(part), "active": part == self.page}
                )
        links.append(
            {
                "url": self.url(self.page + 1) if self.page < self.last_page else None,
                "label": "Next &raquo;",
                "active": False,
            }
        )
        return links

    def _window(self):
        """Page numbers to show, ``None`` standing for "...", as Laravel's UrlWindow."""
        last, current, side = self.last_page, self.page, ON_EACH_SIDE
        window = side * 2
        if last < window + 8:
            return list(range(1, last + 1))
        if current <= window:
            return [*range(1, window + 3), None, last - 1, last]
        if current > last - window:
            return [1, 2, None, *range(last - (window + 2), last + 1)]
        return [1, 2, None, *range(current - side, current + side + 1), None, last - 1, last]
