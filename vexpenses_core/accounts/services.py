"""``UserService`` at the path docs/accounts.md gives plugins.

The services live one idea per module: ``users``, ``auth`` (login sessions
and tokens) and ``reset`` (password reset). Only this name is re-exported:
it is the one the docs tell plugins to import from here.
"""

from .users import UserService

__all__ = ["UserService"]
