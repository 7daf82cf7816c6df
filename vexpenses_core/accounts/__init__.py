"""Users, login sessions, JWT access tokens, refresh, logout and password reset.

Views and commands call the services (``users``, ``auth``, ``reset``); they
never touch the models directly. Every service is request-scoped: it works
in ``request.dbsession``'s transaction and announces what happened through
the plugin hooks.
"""

from .interfaces import IPasswordHasher, IRateLimiter
from .passwords import PasswordHasher
from .ratelimit import RateLimiter


def includeme(config):
    """Register the hasher, the limiter, the routes and the reset page.

    The hasher and the limiter are one per process (the hasher keeps its
    timing dummy, the limiter its store): each factory returns the same
    object. A host app replaces either with its own register_service_factory.
    """
    config.include("pyramid_services")
    settings = config.get_settings()
    config.register_service(PasswordHasher(
        time_cost=settings["vexpenses.argon2.time_cost"],
        memory_cost=settings["vexpenses.argon2.memory_cost"],
        parallelism=settings["vexpenses.argon2.parallelism"],
    ), IPasswordHasher)
    config.register_service(RateLimiter(settings, config.registry.redis), IRateLimiter)
    config.include(".views")
    config.include(".pages")
    config.include(".email_views")
    config.include(".admin_views")
