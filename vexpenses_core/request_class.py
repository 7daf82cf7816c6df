"""One request class for the life of the app, not one per request.

Pyramid applies ``add_request_method`` extensions to each request by making
a new class for it (``type(...)``, about 25 µs, and then garbage for the
collector). The extensions are fixed once the app is made, so the router
here gets a subclass of the request factory with them built in, once.
``pyramid.scripting.prepare`` and tests still apply them per request, from
the registry, as before.
"""

from pyramid.interfaces import IRequestExtensions


def build_request_class(router):
    """Give ``router`` a request class with the registry's extensions built in."""
    extensions = router.registry.queryUtility(IRequestExtensions)
    factory = router.request_factory
    if extensions is None or not isinstance(factory, type):
        return  # a host's own factory function: leave it as Pyramid does it
    attrs = dict(extensions.descriptors)
    attrs.update(extensions.methods)  # plain functions: bound on access, as before
    attrs["__module__"] = factory.__module__
    # Pyramid's per-request class copies these so that zope.interface sees
    # the parent's declarations: the same here, for IRequest.
    for name in ("__implemented__", "__provides__"):
        if name in factory.__dict__:
            attrs[name] = factory.__dict__[name]
    router.request_factory = type(factory.__name__, (factory,), attrs)
    router.request_extensions = None
