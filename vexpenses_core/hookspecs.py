"""The hooks that vexpenses calls, and the contract for each.

Every hook is named ``vexpenses_*``. A plugin implements one by defining a
function of the same name, decorated with :data:`vexpenses_core.hookimpl`;
it may take any subset of the parameters listed here.

"In a request" means the hook is called while a Pyramid request is being
handled, inside its transaction.  "In a worker" means it is called from a
task, which has its own request-like environment and transaction.
"""

import pluggy

hookspec = pluggy.HookspecMarker("vexpenses")
hookimpl = pluggy.HookimplMarker("vexpenses")


# -- Configuration --------------------------------------------------------


@hookspec
def vexpenses_includeme(config):
    """Register a plugin's routes, views, services and directives.

    :param config: the :class:`pyramid.config.Configurator` of the app.

    Called once at start-up, in the web process and in every worker
    process, after the core has been included.  Behave like a Pyramid
    ``includeme``: only register things.  Return value is ignored.
    """


@hookspec
def vexpenses_tasks():
    """Return the plugin's background tasks.

    :return: a list of functions decorated with :func:`vexpenses_core.task`.

    Called once at start-up, in the web process and in every worker
    process, so that both sides agree on task names.
    """


@hookspec
def vexpenses_migration_locations():
    """Return folders of Alembic revisions that belong to this plugin.

    :return: a list of absolute paths.  The first revision of the plugin's
        branch must set ``branch_labels`` to the plugin's short name and
        ``depends_on`` the core revision it needs.

    Called by ``vexpenses migrate`` and by auto-migration at start-up, never
    in a request.
    """


@hookspec
def vexpenses_add_commands(subparsers):
    """Add subcommands to the ``vexpenses`` console script.

    :param subparsers: the :mod:`argparse` sub-parsers object. Each parser
        added must set a ``func`` default, a callable taking the parsed
        ``args``.  A command that needs the app takes a ``config_uri``
        argument and calls :func:`vexpenses_core.cli.bootstrap_app`.

    Called when the console script starts, for every *installed* plugin, so
    that ``--help`` lists all commands; the command itself should refuse to
    run when its plugin is not enabled in the given config.
    """


@hookspec
def vexpenses_openapi(spec):
    """Add the plugin's paths and components to the OpenAPI document.

    :param spec: a dict with the keys ``paths`` and ``components``
        (``components`` holding ``schemas``).  Add to it; return ``None``.
        Adding a path that already exists is an error at start-up.

    Called once when the document is first requested, in a request.
    """


# -- Events ---------------------------------------------------------------


@hookspec
def vexpenses_app_created(registry):
    """The application is configured and ready to serve.

    :param registry: the Pyramid registry, with settings and services.

    Called once per process: in the web process when the WSGI app is
    made, and in each worker process when it has bootstrapped.  Not in a
    request.  Return value is ignored.
    """
