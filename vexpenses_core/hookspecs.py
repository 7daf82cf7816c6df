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
def vexpenses_addhooks(pm):
    """Add a plugin's own hookspecs, so that other plugins can implement them.

    :param pm: the :class:`pluggy.PluginManager`; call
        ``pm.add_hookspecs(my_hookspecs_module)``.

    Called once when the plugin manager is built, after every enabled plugin
    is registered and before misspelt hookimpls are checked. A plugin that
    implements another plugin's hook, which may not be enabled, marks its
    hookimpl ``@hookimpl(optionalhook=True)``. Return ignored.
    """


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
        argument and calls :func:`vexpenses_core.scripting.bootstrap_app`.

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

    Called once at start-up, when the app is configured; not in a request.
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


# -- Accounts events (in a request, except the reset link's: in a task) ------
#
# ``user`` is the ORM object, valid only during the call: to do work later,
# enqueue a task with ``user.id``. No hook is ever given a password, a hash
# or a token, except ``vexpenses_password_reset_requested``'s reset URL,
# which a plugin must treat as a secret.


@hookspec
def vexpenses_user_registered(request, user):
    """A user registered through ``POST /api/v1/user/register``.

    :param request: the current request.
    :param user: the new :class:`~vexpenses_core.models.User`, flushed (it
        has an id) but not yet committed.

    In a request, inside its transaction: work that must happen only if the
    registration commits goes through ``request.enqueue``. Return ignored.
    """


@hookspec
def vexpenses_user_logged_in(request, user, session_id):
    """A user logged in and a login session was created.

    :param user: the user.
    :param session_id: the new session's id (the ``sid`` claim).

    In a request. Return ignored.
    """


@hookspec
def vexpenses_login_failed(request, email):
    """A login attempt failed: unknown e-mail, wrong password or no password set.

    :param email: the e-mail as given (normalised); never the password.

    In a request whose transaction will be aborted: a plugin that must keep
    a record writes it outside that transaction. Return ignored.
    """


@hookspec
def vexpenses_user_logged_out(request, user, session_id):
    """A login session ended by logout or by revoking it.

    :param session_id: the session ended, or ``None`` when every session of
        the user was ended (logout-all).

    In a request. Return ignored.
    """


@hookspec
def vexpenses_token_refreshed(request, user, session_id):
    """A new access token was issued for an existing session.

    Called for both ``GET /refresh-token`` (access token) and ``POST
    /refresh-token`` (refresh token rotation). In a request. Return ignored.
    """


@hookspec
def vexpenses_refresh_reuse_detected(request, user, session_id):
    """A refresh token that was already rotated came back: likely stolen.

    The session ``session_id`` and all its tokens have been revoked. In a
    request, whose transaction commits (the answer is a 401). Return ignored.
    """


@hookspec
def vexpenses_password_reset_requested(request, user, reset_url):
    """Someone asked for a password reset link for ``user``'s address.

    :param request: the request of the ``accounts.password_reset`` task.
    :param user: the account; whoever asked proved nothing.
    :param reset_url: the link to the reset page, built from
        ``vexpenses.base_url``; it holds a secret token. Never log it.

    In a worker, in the task that forgot-password queues for every address
    (so that the request does the same work whether or not it is known);
    not called for unknown e-mails. The mailer plugin sends the link after
    the task commits. Return ignored.
    """


@hookspec
def vexpenses_password_reset_completed(request, user, sessions_ended):
    """A user set a new password with a reset link.

    :param sessions_ended: how many login sessions were ended by it.

    In a request. Return ignored.
    """


@hookspec
def vexpenses_profile_viewed(request, user):
    """A user fetched their own profile (``GET /api/v1/user/me``). In a request."""


@hookspec
def vexpenses_users_listed(request, user, filters):
    """A user listed users (``GET /api/v1/user``).

    :param user: who listed.
    :param filters: ``{"name": ..., "email": ...}``, ``None`` where unused.

    In a request. Return ignored.
    """
