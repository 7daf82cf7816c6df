"""Users, login sessions, JWT access tokens, refresh, logout and password reset."""

from .passwords import PasswordHasher
from .ratelimit import RateLimiter


def includeme(config):
    registry = config.registry
    settings = registry.settings
    if getattr(registry, "password_hasher", None) is None:
        registry.password_hasher = PasswordHasher(
            time_cost=settings["vexpenses.argon2.time_cost"],
            memory_cost=settings["vexpenses.argon2.memory_cost"],
            parallelism=settings["vexpenses.argon2.parallelism"],
        )
        registry.rate_limiter = RateLimiter(settings, registry.redis)
    config.include(".views")
    config.include(".pages")
