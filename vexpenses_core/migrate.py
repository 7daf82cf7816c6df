"""Alembic migrations for the core and every enabled plugin.

There is one Alembic environment, in ``vexpenses_core/migrations``. Each
plugin brings its own branch through ``vexpenses_migration_locations``;
upgrading to ``heads`` applies the core and every enabled plugin's branch.
"""

import logging
import os
from importlib.resources import files

from alembic import command
from alembic.config import Config

log = logging.getLogger(__name__)

CORE_VERSIONS = str(files("vexpenses_core") / "migrations" / "versions")


def alembic_config(registry):
    """Return an Alembic config bound to the app's engine and plugins."""
    config = Config()
    config.set_main_option("script_location", str(files("vexpenses_core") / "migrations"))
    config.set_main_option("path_separator", "os")
    locations = [CORE_VERSIONS]
    for found in registry.pm.hook.vexpenses_migration_locations():
        locations.extend(str(path) for path in found or [])
    config.set_main_option("version_locations", os.pathsep.join(locations))
    config.attributes["engine"] = registry.dbengine
    return config


def upgrade(registry, revision="heads"):
    """Apply every pending revision of the core and the enabled plugins."""
    command.upgrade(alembic_config(registry), revision)


def pending_revisions(registry):
    """Revisions of the core and enabled plugins not yet applied, as a set of ids."""
    from alembic.script import ScriptDirectory

    revisions = ScriptDirectory.from_config(alembic_config(registry)).revision_map
    everything = {rev.revision for rev in revisions.iterate_revisions("heads", "base")}
    current = tuple(current_heads(registry))
    applied = {rev.revision for rev in revisions.iterate_revisions(current, "base")}
    return everything - applied


def current_heads(registry):
    """The revisions the database is at, as a set of ids."""
    from alembic.runtime.migration import MigrationContext

    with registry.dbengine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())
