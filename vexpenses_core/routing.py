"""Route matching that goes straight to a fixed path's route.

Pyramid tries its routes in order, one regular expression each, until one
matches: ``GET /api/v1/user/me`` tried fourteen patterns first. Most of
our routes are fixed paths. For each fixed path, this mapper works out once
whether any earlier route could match it too; if none could, a request for
exactly that path starts at its route. The answer is the one Pyramid's loop
gives, only found sooner: a route whose predicates refuse the request sends
the search on, in order, from the next route.
"""

from pyramid.exceptions import URLDecodeError


class StraightRoutes:
    """Wraps Pyramid's ``RoutesMapper`` for the router; the same answers."""

    def __init__(self, mapper):
        self.mapper = mapper
        self.routes = list(mapper.get_routes())
        self.start = {}  # fixed path -> index of the first route that can match it
        for index, route in enumerate(self.routes):
            path = route.pattern if route.pattern.startswith("/") else "/" + route.pattern
            if route.match(path) != {} or path in self.start:
                continue  # a pattern, or a second route for the same path
            if any(earlier.match(path) is not None for earlier in self.routes[:index]):
                continue
            self.start[path] = index

    def __getattr__(self, name):  # get_routes(), generate() and the rest, unchanged
        return getattr(self.mapper, name)

    def __call__(self, request):
        try:
            path = request.path_info or "/"
        except KeyError:
            path = "/"
        except UnicodeDecodeError as e:
            raise URLDecodeError(e.encoding, e.object, e.start, e.end, e.reason) from e
        for route in self.routes[self.start.get(path, 0):]:
            match = route.match(path)
            if match is not None:
                preds = route.predicates
                info = {"match": match, "route": route}
                if preds and not all(p(info, request) for p in preds):
                    continue
                return info
        return {"route": None, "match": None}


def straighten_routes(router):
    """Give ``router`` a :class:`StraightRoutes` over its routes, once they are all added."""
    if router.routes_mapper is not None:
        router.routes_mapper = StraightRoutes(router.routes_mapper)
