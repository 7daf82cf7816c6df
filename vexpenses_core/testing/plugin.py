"""The pytest plugin of vexpenses (entry point ``pytest11``: ``vexpenses``).

Installed with the core, it gives every test of the core and of the plugins
the same fixtures, each module below holding one kind of them.
"""

import pkg_resources

import vexpenses_core

pytest_plugins = [
    "vexpenses_core.testing.databases",
    "vexpenses_core.testing.apps",
    "vexpenses_core.testing.browser",
]

# pytest rewrites the asserts of an installed plugin's whole distribution, so the
# core is imported through pytest's loader. Pyramid finds the core's static files
# through pkg_resources, which only reads from loaders it knows: tell it that this
# one loads plain files, as pytest itself did until version 4.6.
pkg_resources.register_loader_type(type(vexpenses_core.__loader__),
                                   pkg_resources.DefaultProvider)
