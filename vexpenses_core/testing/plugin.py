"""The pytest plugin of vexpenses (entry point ``pytest11``: ``vexpenses``).

Installed with the core, it gives every test of the core and of the plugins
the same fixtures, each module below holding one kind of them.
"""

import pkg_resources

import vexpenses_core

# Imported, not listed in ``pytest_plugins``: the package's ``__init__`` has
# already imported these modules for its helpers, and pytest refuses (as an
# error under ``-W error``) to rewrite the asserts of a plugin module it finds
# imported. Plain ``pytest`` loads this entry point before any conftest.
from .apps import *  # noqa: E402, F403
from .browser import *  # noqa: E402, F403
from .databases import *  # noqa: E402, F403
from .s3 import *  # noqa: E402, F403
from .sentinel import *  # noqa: E402, F403

# pytest rewrites the asserts of an installed plugin's whole distribution, so the
# core is imported through pytest's loader. Pyramid finds the core's static files
# through pkg_resources, which only reads from loaders it knows: tell it that this
# one loads plain files, as pytest itself did until version 4.6.
pkg_resources.register_loader_type(type(vexpenses_core.__loader__),
                                   pkg_resources.DefaultProvider)
