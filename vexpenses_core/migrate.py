"""Alembic migrations for the core and every enabled plugin.

There is one Alembic environment, in ``vexpenses_core/migrations``. Each
plugin brings its own branch, labelled with its short name: the revisions in
the ``migrations/`` folder beside its module, and any folder it returns from
``vexpenses_migration_locations`` (for an unusual layout). Upgrading applies
the head of the ``core`` branch and of every enabled plugin's branch; the
revisions of installed but disabled plugins are still known, so that a
database migrated while such a plugin was enabled keeps working after it is
disabled.
"""

import logging
import os
import re
from importlib.resources import files

from alembic import command
from alembic.config import Config

log = logging.getLogger(__name__)

CORE_VERSIONS = str(files("vexpenses_core") / "migrations" / "versions")


class MigrationRefused(Exception):
    """A migration will not run on this data; the message says what to fix first."""


def plugin_locations(pm):
    """``{plugin name: [folders]}`` for each plugin of ``pm`` with migrations."""
    from .plugins import plugin_folders

    found = {name: [path] for name, path in plugin_folders(pm, "migrations").items()}
    for impl in pm.hook.vexpenses_migration_locations.get_hookimpls():
        known = found.setdefault(impl.plugin_name, [])
        for path in impl.function() or []:
            # The hook may name the conventional folder too: Alembic must see it once.
            if os.path.realpath(path) not in map(os.path.realpath, known):
                known.append(str(path))
    return found


def enabled_branches(registry):
    """``{branch label: [folders]}`` for the core and each enabled plugin with migrations."""
    return {"core": [CORE_VERSIONS], **plugin_locations(registry.pm)}


def _installed_locations():
    from .plugins import build_plugin_manager, installed_plugins
    from .settings import ConfigurationError

    try:
        pm = build_plugin_manager(list(installed_plugins()))
    except ConfigurationError:  # a broken plugin that is not enabled must not block us
        log.warning("could not load every installed plugin to find its migrations")
        return []
    return [path for paths in plugin_locations(pm).values() for path in paths]


def alembic_config(registry, only_enabled=False):
    """Return an Alembic config bound to the app's engine and plugins.

    It knows the revisions of every installed plugin, unless ``only_enabled``.
    """
    config = Config()
    config.set_main_option("script_location", str(files("vexpenses_core") / "migrations"))
    config.set_main_option("path_separator", "os")
    locations = [path for paths in enabled_branches(registry).values() for path in paths]
    for path in [] if only_enabled else _installed_locations():
        if path not in locations:
            locations.append(path)
    config.set_main_option("version_locations", os.pathsep.join(locations))
    config.attributes["engine"] = registry.dbengine
    # For a revision that needs a setting, e.g. audit_log_0002's chain key.
    config.attributes["settings"] = registry.settings
    return config


def upgrade(registry):
    """Apply every pending revision of the core and the enabled plugins.

    Return the ids of the revisions applied, sorted (none when the database
    was up to date).
    """
    config = alembic_config(registry)  # built once: it loads every installed plugin
    pending = pending_revisions(registry, config)
    for branch in enabled_branches(registry):
        command.upgrade(config, f"{branch}@head")
    return sorted(pending)


def pending_revisions(registry, config=None):
    """Revisions of the core and enabled plugins not yet applied, as a set of ids.

    ``config`` is an :func:`alembic_config` already built, to spare building another.
    """
    from alembic.script import ScriptDirectory

    config = config or alembic_config(registry)
    revisions = ScriptDirectory.from_config(config).revision_map
    heads = tuple(f"{branch}@head" for branch in enabled_branches(registry))
    wanted = {rev.revision for rev in revisions.iterate_revisions(heads, "base")}
    current = tuple(current_heads(registry))
    applied = {rev.revision for rev in revisions.iterate_revisions(current, "base")}
    return wanted - applied


def current_heads(registry):
    """The revisions the database is at, as a set of ids."""
    from alembic.runtime.migration import MigrationContext

    with registry.dbengine.connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads())



def revision(registry, branch, message):
    """Autogenerate a revision on ``branch`` (a plugin's short name, or ``core``).

    The new file goes into the branch's first folder (a plugin's
    ``migrations/``), numbered after the branch's last revision
    (``hello_0002``). Only the branch's own tables are compared, so that a
    change to another plugin's models never lands in this one's revision.
    The database must be at the head of the branch. Returns the new file's path.
    """
    from alembic.script import ScriptDirectory

    from .settings import ConfigurationError

    branches = enabled_branches(registry)
    if branch not in branches:
        raise ConfigurationError(
            f"{branch!r} has no migrations here: enable the plugin in vexpenses.plugins "
            f"and give it a migrations/ folder beside its module"
        )
    # Autogenerate wants the database at every head it knows: the enabled ones.
    config = alembic_config(registry, only_enabled=True)
    known = ScriptDirectory.from_config(config).revision_map.iterate_revisions("heads", "base")
    numbers = [int(rev.revision.rpartition("_")[2]) for rev in known
               if re.fullmatch(rf"{re.escape(branch)}_\d+", rev.revision)]
    tables = _branch_tables(registry, branch)

    def include_object(obj, name, type_, reflected, compare_to):
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in tables

    config.attributes["include_object"] = include_object
    if numbers:
        where = {"head": f"{branch}@head"}
    else:  # the branch's first revision
        where = {"head": "base", "branch_label": branch, "depends_on": "core@head"}
    script = command.revision(
        config, message=message, autogenerate=True,
        rev_id=f"{branch}_{max(numbers, default=0) + 1:04d}",
        version_path=branches[branch][0], **where)
    return script.path


def _branch_tables(registry, branch):
    """The tables of ``branch``: mapped by its package's models, or named ``<branch>_*``."""
    from .db import Base, metadata

    package = "vexpenses_core" if branch == "core" else registry.pm.get_plugin(branch).__package__
    tables = {name for name in metadata.tables if name.startswith(f"{branch}_")}
    for mapper in Base.registry.mappers:
        module = mapper.class_.__module__
        if module == package or module.startswith(f"{package}."):
            tables.add(mapper.local_table.name)
    return tables
