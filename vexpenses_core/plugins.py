"""Finding, enabling and managing plugins.

Installed plugins announce themselves through the entry-point group
``vexpenses.plugins``; the entry-point name is the plugin's short name.
Only the names listed in ``vexpenses.plugins`` are loaded.
"""

import importlib.metadata
import os

import pluggy

from . import hookspecs
from .schemas import PluginInfo
from .settings import ConfigurationError, Problems, read_settings

ENTRY_POINT_GROUP = "vexpenses.plugins"

# The core's own hookimpls are a plugin like any other, always enabled.
BUILTIN_PLUGINS = {"core": "vexpenses_core.core_plugin"}


def installed_plugins():
    """Return ``{short name: entry point}`` for every installed plugin."""
    found = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def build_plugin_manager(enabled, installed=None):
    """Make a plugin manager holding the core and the ``enabled`` plugins.

    :param enabled: short names, in the order given by the operator.
    :param installed: mapping of name to entry point (defaults to
        :func:`installed_plugins`); tests pass their own.
    :raises ConfigurationError: for a name that is not installed, or a
        plugin with a hookimpl that matches no hookspec.
    """
    installed = installed_plugins() if installed is None else installed
    unknown = [name for name in enabled if name not in installed]
    if unknown:
        available = ", ".join(sorted(installed)) or "none"
        raise ConfigurationError(
            f"Unknown plugin(s) in vexpenses.plugins: {', '.join(unknown)}. "
            f"Installed plugins: {available}."
        )

    pm = pluggy.PluginManager("vexpenses")
    pm.add_hookspecs(hookspecs)
    for name, module in BUILTIN_PLUGINS.items():
        pm.register(importlib.import_module(module), name=name)
    # Where each plugin came from, for introspection.
    pm.vexpenses_dists = {name: ("vexpenses-core", _version("vexpenses-core"))
                          for name in BUILTIN_PLUGINS}
    for name in dict.fromkeys(enabled):
        ep = installed[name]
        try:
            pm.register(ep.load(), name=name)
        except pluggy.PluginValidationError as exc:
            raise ConfigurationError(f"Plugin {name!r} has a bad hookimpl: {exc}") from exc
        dist = getattr(ep, "dist", None)
        pm.vexpenses_dists[name] = (
            (dist.metadata["Name"], dist.version) if dist is not None else (None, None)
        )
    pm.hook.vexpenses_addhooks(pm=pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise ConfigurationError(f"A plugin implements an unknown hook: {exc}") from exc
    return pm


def settings_problems(pm, settings):
    """Every enabled plugin's answer to ``vexpenses_check_settings``, as messages.

    Each plugin is asked on its own, so that one that raises does not hide
    the others' problems.
    """
    problems = Problems()
    arguments = {"settings": settings}
    for impl in pm.hook.vexpenses_check_settings.get_hookimpls():
        with problems.collect():
            found = impl.function(*(arguments[name] for name in impl.argnames))
            for message in found or ():
                problems.add(message)
    return problems.messages


def check_configuration(settings, environ=None, installed=None):
    """``(settings, pm, problems)``: the core's settings and every enabled plugin's, checked.

    ``settings`` comes back normalised as far as it could be, ``pm`` is the
    plugin manager (``None`` when the plugin list itself is wrong), and
    ``problems`` (:class:`~vexpenses_core.settings.Problems`) holds every
    problem found. Start-up raises them all at once; ``vexpenses check``
    prints them. Nothing is connected to.
    """
    normalized, problems = read_settings(settings, environ)
    pm = None
    with problems.collect():
        pm = build_plugin_manager(normalized["vexpenses.plugins"], installed)
    if pm is not None:
        problems.messages.extend(settings_problems(pm, normalized))
    if not problems and normalized["vexpenses.jwt_algorithm"] != "HS256":
        from .security import check_keys, make_jwt_engine

        with problems.collect():
            check_keys(make_jwt_engine(normalized))
    return normalized, pm, problems


def plugin_info(pm):
    """Describe the loaded plugins for introspection: name, version, hooks."""
    result = []
    for name, plugin in pm.list_name_plugin():
        project, version = pm.vexpenses_dists.get(name, (None, None))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        result.append(PluginInfo(name=name, project=project, version=version,
                                 hooks=hooks).model_dump())
    return result


def plugin_folder(pm, name, folder):
    """The folder ``folder`` next to plugin ``name``'s module, or ``None``.

    The convention that spares a plugin a hook: its ``migrations/``,
    ``static/`` and ``templates/`` sit beside the module its entry point
    names (the package's ``__init__.py``). The core's own folders are not
    found this way.
    """
    if name in BUILTIN_PLUGINS:
        return None
    module_file = getattr(pm.get_plugin(name), "__file__", None)
    if not module_file:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(module_file)), folder)
    return path if os.path.isdir(path) else None


def plugin_folders(pm, folder):
    """``{plugin name: path}`` for every plugin in ``pm`` that has ``folder``."""
    found = {}
    for name, _plugin in pm.list_name_plugin():
        path = plugin_folder(pm, name, folder)
        if path is not None:
            found[name] = path
    return found


def add_static_views(config, pm):
    """Serve each plugin's ``static/`` folder at ``/static/<name>/``.

    A page links to its files with
    ``request.static_path("<package>:static/<file>")``.
    """
    for name in plugin_folders(pm, "static"):
        package = pm.get_plugin(name).__package__
        config.add_static_view(f"static/{name}", f"{package}:static/")


def _version(dist_name):
    try:
        return importlib.metadata.version(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None


def includeme(config):
    """Build the plugin manager from settings and expose it.

    ``registry.pm`` and ``request.pm`` give the manager. Including twice
    keeps the first manager. Each enabled plugin's ``static/`` folder is
    served, see :func:`add_static_views`.
    """
    registry = config.registry
    if not getattr(registry, "vexpenses_plugins_included", False):
        registry.vexpenses_plugins_included = True
        if getattr(registry, "pm", None) is None:  # unless the core's includeme made one
            registry.pm = build_plugin_manager(registry.settings["vexpenses.plugins"])
        add_static_views(config, registry.pm)
    config.add_request_method(lambda request: request.registry.pm, "pm", reify=True)
