"""The hooks that vexpenses calls, and the contract for each.

Every hook is named ``vexpenses_*``. A plugin implements one by defining a
function of the same name, decorated with :data:`vexpenses_core.hookimpl`;
it may take any subset of the parameters listed here.

"In a request" means the hook is called while a Pyramid request is being
handled, inside its transaction.  "In a worker" means it is called from a
task, which has its own request-like environment and transaction.

"Start-up" means while an app is being built: in the web process, in each
worker process, in every ``vexpenses`` command that loads an ini file, and in
a host app that includes ``vexpenses_core``.

Each docstring is the hook's contract, and docs/hooks.md is generated from
it: ``:param:`` for every parameter, ``:return:`` (without one, the hook
returns nothing and its return value is ignored), and ``:runs:``, when and
where it is called. firstresult is read from the decorator.
"""

import pluggy

hookspec = pluggy.HookspecMarker("vexpenses")
hookimpl = pluggy.HookimplMarker("vexpenses")


# -- Configuration --------------------------------------------------------


@hookspec
def vexpenses_addhooks(pm):
    """Add the plugin's own hookspecs, so that other plugins can implement them.

    This is how ``csv_import`` announces its import events and how ``mailer``
    listens to them without either importing the other.

    :param pm: the :class:`pluggy.PluginManager`; call
        ``pm.add_hookspecs(your_hookspecs_module)``.
    :runs: once per process, when the plugin manager is built: after every
        enabled plugin is registered, before misspelt hookimpls are checked.

    A plugin that implements another plugin's hook, which may not be enabled,
    marks its hookimpl ``@hookimpl(optionalhook=True)``, so that the
    misspelling check lets it pass.
    """


@hookspec
def vexpenses_includeme(config):
    """Register the plugin's routes, views, services, request methods and
    directives. Treat it like a Pyramid ``includeme``: only register things.

    :param config: the app's :class:`pyramid.config.Configurator`.
    :runs: once at start-up, in every process that builds the app. It runs
        after the core has been included (database, Redis, task queue,
        security, OpenAPI, accounts), and before tasks are registered.

    The ``config`` belongs to ``vexpenses_core``. A relative dotted name such
    as ``".views"`` would resolve against ``vexpenses_core``, not the plugin,
    so pass absolute names to ``config.include`` and ``config.scan``.
    """


@hookspec
def vexpenses_check_settings(settings):
    """Report what is wrong with the plugin's settings, without starting anything.

    :param settings: the app's settings, the core's normalised as far as they
        could be: a core setting with a bad value keeps the value as given
        (that problem is reported by the core).
    :return: a list of one-line messages, one per problem, each naming the
        setting, its environment variable and what to write instead; an
        empty list or ``None`` when all is well. Raising
        :class:`~vexpenses_core.ConfigurationError` works too: its problems
        are taken (``ConfigurationError.problems``).
    :runs: in ``vexpenses check``, and at start-up before any plugin's
        ``vexpenses_includeme``, so that one try names every bad setting of
        the core and of every enabled plugin. Never in a request.

    Call the function your ``includeme`` reads the settings with, so that
    the check and start-up cannot disagree: ``SETTINGS.read(settings)`` of a
    :class:`~vexpenses_core.settings.PluginSettings` raises one error that
    names every bad value. Do not connect to anything here, and never put a
    secret in a message.
    """


@hookspec
def vexpenses_tasks():
    """Return the plugin's background tasks, so that the web process and the
    workers know the same task names.

    :return: a list of functions decorated with :func:`vexpenses_core.task`.
        Two tasks with the same name, from any plugins, stop start-up with
        ``two tasks are named ...``.
    :runs: once at start-up, in every process that builds the app, right
        after ``vexpenses_includeme``.
    """


@hookspec
def vexpenses_migration_locations():
    """Return the folders that hold the plugin's Alembic revisions.

    vexpenses has a single Alembic environment, and each plugin brings its
    own branch.

    :return: a list of absolute paths (strings, or objects that ``str()``
        turns into paths). The first revision of the plugin's branch sets
        ``branch_labels`` to the plugin's short name, and ``depends_on`` to
        the core revision it needs, e.g. ``"core_0001"``.
    :runs: whenever vexpenses builds its Alembic configuration: in
        ``vexpenses migrate``, in auto-migration when the app is built, and
        in ``vexpenses_core.migrate.alembic_config()`` when your own code or
        tests call it. Never in a request.
    """


@hookspec
def vexpenses_add_commands(subparsers):
    """Add subcommands to the ``vexpenses`` console script.

    :param subparsers: the object returned by argparse's ``add_subparsers()``.
        Each parser added must set a ``func`` default: a callable that takes
        the parsed ``args`` and returns an exit code or ``None``.
        A command that needs the app takes a ``config_uri``
        argument and calls :func:`vexpenses_core.scripting.bootstrap_app`
        with ``require_plugin="<name>"``, which makes the command refuse to
        run when the plugin is not enabled in the given ini file.
    :runs: when the console script starts, before any ini file is read,
        after the core's ``migrate`` and ``worker`` commands. It runs for
        every *installed* plugin, enabled or not, so that ``--help`` lists
        every command: the plugin module is imported every time ``vexpenses``
        runs, so keep its import cheap.

    A ``ConfigurationError`` raised by a command is printed as
    ``vexpenses: configuration error: ...``, and the command exits with
    status 2.
    """


@hookspec
def vexpenses_openapi(spec):
    """Add the plugin's paths and components to the OpenAPI 3.1 document
    served at ``/api/v1/openapi.json``, which ``/api/v1/docs`` displays.

    :param spec: the document as a dict. Add to ``spec["paths"]``. Every
        request and response body is a pydantic model, added to
        ``spec["components"]["schemas"]`` by ``request_body(spec, Model)``,
        ``envelope(spec, message, Model)`` or ``schema_ref(spec, Model)``
        (exported by ``vexpenses_core``); a schema written by hand fails
        tests/test_openapi_models.py. ``components`` also holds
        ``securitySchemes``, with a ``bearer`` JWT scheme, and the
        ``Failure`` schema of the error envelope;
        ``error_response(description)`` returns a response object that
        refers to ``Failure``.
    :return: ``None``; change ``spec`` in place.
    :runs: once at start-up, not in a request, in every process that builds
        the app, after ``vexpenses_tasks``. The document is built then and
        kept for the life of the process; each request gets a copy of it.

    ``spec["paths"]`` refuses a path that is already there, whether it is
    assigned, ``update()``-d or ``setdefault()``-ed: two contributors cannot
    define the same path. The clash stops start-up with a configuration
    error that names the path (``two plugins define the OpenAPI path ...``).
    """


# -- Events ---------------------------------------------------------------


@hookspec
def vexpenses_app_created(registry):
    """The app is configured and ready. Use it to warm caches or check
    external services at start-up.

    :param registry: the Pyramid registry. It holds ``settings``, ``pm``,
        ``dbengine``, ``redis`` and ``queue``.
    :runs: not in a request. It runs when vexpenses' own app factory (the
        ``egg:vexpenses-core`` entry point) has built the app: in the web
        process, in each worker process (once it has built its app, before
        it takes tasks), in the ``vexpenses worker`` supervisor (which builds
        the app once to check the configuration), and in every ``vexpenses``
        command that loads an ini file.

    A process that builds several apps, such as a test run, calls this hook
    once for each: make an implementation idempotent. A host app that uses
    ``config.include("vexpenses_core")`` builds the app itself: it gets this
    hook by finishing with ``vexpenses_core.make_wsgi_app(config)``.
    """


# -- Accounts events (in a request, except the reset link's: in a task) ------
#
# ``user`` is the ORM object, valid only during the call: to do work later,
# enqueue a task with ``user.id``. No hook is ever given a password, a hash
# or a token, except ``vexpenses_password_reset_requested``'s reset URL,
# which a plugin must treat as a secret. A hookimpl that raises fails the
# request: the client gets a 500 and its transaction is rolled back.


@hookspec
def vexpenses_user_registered(request, user):
    """A user registered through ``POST /api/v1/user/register``, or was
    created by ``vexpenses create-admin``.

    :param request: the current request (a command's request for
        ``create-admin``).
    :param user: the new :class:`~vexpenses_core.models.User`. It has been
        flushed, so it has an ``id``, but it is not committed yet.
    :runs: in a request or a command, inside its transaction, which commits
        after the hook unless a hookimpl raises. Users imported from a CSV
        file fire ``vexpenses_users_imported`` instead.

    Work that must happen only if the registration commits, such as the
    welcome e-mail, goes through ``request.enqueue``.
    """


@hookspec
def vexpenses_user_logged_in(request, user, session_id):
    """A user logged in with the right password, and a login session was created.

    :param request: the current request.
    :param user: the user who logged in.
    :param session_id: the new login session's id, a 32-character hex
        string. It is the ``sid`` claim of the access token, and the ``id``
        that ``GET /api/v1/user/sessions`` lists.
    :runs: in a request, inside its transaction, which commits (it holds the
        new session, and a password rehash when one was needed).
    """


@hookspec
def vexpenses_login_failed(request, email):
    """A login attempt failed: the e-mail is unknown, the password is wrong,
    or the user has no password yet (imported users).

    It is not called for attempts refused before the password is checked: a
    422 for a missing field, or a 429 from the rate limits.

    :param request: the current request.
    :param email: the e-mail as given, normalised (trimmed, lower case). It
        may belong to no user. The password is never passed.
    :runs: in a request whose transaction is **aborted**: the answer is a
        401. Rows written to ``request.dbsession`` are rolled back, and tasks
        queued with ``request.enqueue`` are never sent.

    A plugin that must keep a record writes it outside that transaction, for
    example in Redis, in the log, or through a session of its own made from
    ``request.registry.dbsession_factory()`` and committed by the plugin.
    """


@hookspec
def vexpenses_user_logged_out(request, user, session_id):
    """One or all of a user's login sessions were ended by the user.

    :param request: the current request.
    :param user: the user whose sessions ended.
    :param session_id: the session that ended, or ``None`` when every session
        of the user was ended at once.
    :runs: in a request, inside its transaction, which commits. Called by
        ``GET`` or ``POST /api/v1/user/logout``, with the current session;
        ``DELETE /api/v1/user/sessions/{id}``, with the session revoked; and
        ``POST /api/v1/user/logout-all``, with ``None``.

    Sessions ended by a password reset or by refresh-token reuse do not call
    this hook: see ``vexpenses_password_reset_completed`` and
    ``vexpenses_refresh_reuse_detected``.
    """


@hookspec
def vexpenses_token_refreshed(request, user, session_id):
    """A new access token was issued for an existing login session.

    :param request: the current request.
    :param user: the session's user.
    :param session_id: the session the token belongs to.
    :runs: in a request, inside its transaction, which commits. Called by
        both ``GET /api/v1/user/refresh-token`` (a new access token, for a
        valid access token) and ``POST /api/v1/user/refresh-token`` (refresh
        token rotation).

    This is the most frequent accounts event: a client refreshes about every
    15 minutes. Keep it cheap.
    """


@hookspec
def vexpenses_refresh_reuse_detected(request, user, session_id):
    """A refresh token that had already been rotated was presented again.

    Either the client has a bug, or someone copied the token: the core cannot
    tell which one is the thief, so it ends that login.

    :param request: the current request.
    :param user: the session's user.
    :param session_id: the session that was revoked. Its access tokens and
        refresh tokens stopped working; the user's other sessions are
        untouched.
    :runs: in a request whose transaction **commits**, although the answer
        is a 401: the revocation must stay. Work queued with
        ``request.enqueue`` is therefore sent.
    """


@hookspec
def vexpenses_password_reset_requested(request, user, reset_url):
    """Someone asked for a password reset link for this user's address,
    through ``POST /api/v1/user/forgot-password``. The plugin that sends
    e-mail delivers the link.

    :param request: the request of the ``accounts.password_reset`` task
        (``request.dbsession``, ``request.enqueue``); no route, no client
        address.
    :param user: the account the address belongs to. Whoever asked proved
        nothing: it need not be this user.
    :param reset_url: the link to the reset page,
        ``<vexpenses.base_url>/reset-password?token=...&email=...``. It holds
        a secret token: never log it.
    :runs: in a worker, in the ``accounts.password_reset`` task, inside the
        task's transaction, which commits (it holds the new reset token).
        forgot-password queues that task for every well-formed address and
        answers at once, so the request does the same work, in the same time,
        whether or not the address has an account. The task looks the
        address up; for an unknown one it does nothing and this hook is not
        called. ``request.enqueue`` works as in a view: the task sends after
        the task's commit.
    """


@hookspec
def vexpenses_password_reset_completed(request, user, sessions_ended):
    """A user set a new password with a reset link, through
    ``POST /api/v1/user/recover-password``.

    :param request: the current request.
    :param user: the user, who now has the new password.
    :param sessions_ended: how many active login sessions the reset ended (an
        integer, possibly 0).
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_profile_viewed(request, user):
    """A user fetched their own profile with ``GET /api/v1/user/me``.

    :param request: the current request.
    :param user: the authenticated user.
    :return: nothing. The return value is ignored: the hook cannot change
        the response.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_profile_updated(request, user, fields):
    """A user changed their own profile with ``PATCH /api/v1/user/me``.

    :param request: the current request.
    :param user: the authenticated user, already holding the new values.
    :param fields: the names of the fields sent, sorted: some of ``"birth_date"``
        and ``"name"``. A field sent with its current value is listed too.
    :return: nothing. The return value is ignored: the hook cannot change
        the response.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_password_changed(request, user, sessions_ended):
    """A user changed their password with ``POST /api/v1/user/me/password``,
    proving the current one.

    Not called for a reset through a link: that is
    ``vexpenses_password_reset_completed``. Both take the same arguments, so one
    function can implement both (the mailer sends the same notice).

    :param request: the current request.
    :param user: the authenticated user, who now has the new password.
    :param sessions_ended: how many of the user's *other* active login sessions
        were ended (an integer, possibly 0). The session of the request itself
        stays logged in.
    :runs: in a request, inside its transaction, which commits. A wrong
        current password is a 422 and calls no hook.
    """


@hookspec
def vexpenses_users_listed(request, user, filters):
    """A user listed users with ``GET /api/v1/user``, by page or by cursor.

    :param request: the current request.
    :param user: who listed (the authenticated user), not a listed user.
    :param filters: ``{"name": ..., "email": ...}``, the query's filters with
        surrounding spaces removed, and ``None`` for a filter that was not
        given or was blank.
    :return: nothing. The return value is ignored: the hook cannot change
        the response.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_exported(request, user):
    """A user exported the data held about them with ``GET /api/v1/user/me/export``
    (the LGPD right of access).

    :param request: the current request.
    :param user: the authenticated user, whose data was exported.
    :return: nothing. The return value is ignored: the hook cannot change
        the export.
    :runs: in a request, inside its transaction, which commits, after every
        ``vexpenses_export_user`` section was gathered. A request over
        ``vexpenses.ratelimit.export`` is a 429 and calls no hook.
    """


@hookspec
def vexpenses_email_verification_requested(request, user, verify_url):
    """A link that proves ``user``'s address was made, to be e-mailed to it.

    The plugin that sends e-mail delivers the link.

    :param request: the current request, or the request of the
        ``accounts.verification`` task (no route, no client address).
    :param user: the account, whose ``email`` is the address to prove.
    :param verify_url: the link to the verification page,
        ``<vexpenses.base_url>/verify-email?token=...``. It holds a secret
        token: never log or store it.
    :runs: inside a transaction which commits (it holds the new token):
        the request's for ``POST /api/v1/user/register`` (after
        ``vexpenses_user_registered``) and for ``POST
        /api/v1/user/verify-email/resend`` with a login; the
        ``accounts.verification`` task's for a resend without a login, which
        only names an address (the task looks it up, so the answer tells
        nothing about it). Never for an address already verified, nor for a
        disabled account. Deliver with ``request.enqueue``, so that nothing
        is sent if the transaction fails.
    """


@hookspec
def vexpenses_email_verified(request, user):
    """A user proved their address with the verification link
    (``POST /api/v1/user/verify-email``).

    :param request: the current request (no login needed: the link is the proof).
    :param user: the user, whose ``email_verified_at`` is now set.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_email_change_requested(request, user, new_email, confirm_url):
    """A user asked to move their account to another address (``POST
    /api/v1/user/me/email``), proving their password.

    Nothing has changed yet: the address changes when the link sent to
    ``new_email`` is used. The plugin that sends e-mail sends the link to the
    new address and a notice, with no link, to the old one (``user.email``).

    :param request: the current request.
    :param user: the authenticated user, still with the old address.
    :param new_email: the address asked for, canonical.
    :param confirm_url: the link to the confirmation page,
        ``<vexpenses.base_url>/confirm-email?token=...``. It holds a secret
        token: never log or store it.
    :runs: in a request, inside its transaction, which commits (it holds the
        new token).
    """


@hookspec
def vexpenses_email_changed(request, user, old_email):
    """A user confirmed a new address with the link sent to it (``POST
    /api/v1/user/confirm-email``); the account now has it, verified.

    :param request: the current request (no login needed: the link is the proof).
    :param user: the user, holding the new ``email``.
    :param old_email: the address the account had before.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_viewed(request, user):
    """A user was fetched by id with ``GET /api/v1/user/{id}``: by an admin, or
    by the user themselves.

    :param request: the current request; ``request.identity`` is who looked.
    :param user: the user looked at.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_updated(request, user, fields):
    """An admin changed a user with ``PATCH /api/v1/user/{id}``.

    Disabling or enabling also calls ``vexpenses_user_disabled`` or
    ``vexpenses_user_enabled``.

    :param request: the current request; ``request.identity`` is the admin.
    :param user: the user changed, already holding the new values.
    :param fields: the names of the fields sent, sorted: some of
        ``"birth_date"``, ``"disabled"``, ``"is_admin"`` and ``"name"``.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_disabled(request, user, sessions_ended):
    """An admin disabled a user (``PATCH /api/v1/user/{id}`` with
    ``"disabled": true``): their sessions ended, and they can neither log in
    nor reset their password until enabled again.

    :param request: the current request; ``request.identity`` is the admin.
    :param user: the user disabled; ``disabled_at`` is set.
    :param sessions_ended: how many active login sessions ended (an integer).
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_enabled(request, user):
    """An admin enabled a disabled user again (``PATCH /api/v1/user/{id}`` with
    ``"disabled": false``).

    :param request: the current request; ``request.identity`` is the admin.
    :param user: the user enabled; ``disabled_at`` is null again.
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_sessions_revoked(request, user, sessions_ended):
    """An admin ended every login session of a user (``POST
    /api/v1/user/{id}/logout-all``).

    :param request: the current request; ``request.identity`` is the admin.
    :param user: the user whose sessions ended.
    :param sessions_ended: how many active login sessions ended (an integer).
    :runs: in a request, inside its transaction, which commits.
    """


@hookspec
def vexpenses_user_deleted(request, user, by_admin):
    """An account was deleted (the LGPD right to erasure), by its owner with
    ``DELETE /api/v1/user/me`` or by an admin with ``DELETE /api/v1/user/{id}``.

    Every plugin has already erased what it held about the person
    (``vexpenses_erase_user``), and the ``users`` row is gone.

    :param request: the current request.
    :param user: the deleted :class:`~vexpenses_core.models.User`, detached:
        read ``id``, ``name`` and ``email`` (to say goodbye), but never store
        the name or the address anywhere: the person asked to be forgotten.
    :param by_admin: ``True`` when an admin deleted the account, ``False``
        when its owner did.
    :runs: in a request, inside its transaction, which commits.
    """


# -- Accounts data -----------------------------------------------------------


@hookspec
def vexpenses_export_user(request, user, limit):
    """The data this plugin holds about ``user``, for their export.

    Each plugin answers for its own tables. The core puts ``user`` and
    ``sessions`` itself; a plugin's section names must be new: a name that
    the core or another plugin already gave is an error (a 500, and a bug
    to fix in one of the plugins), never a silent overwrite.

    :param request: the current request.
    :param user: the authenticated user (a :class:`~vexpenses_core.models.User`).
    :param limit: the most rows a list section may hold. Return at most
        ``limit + 1`` rows, newest first: the core keeps ``limit`` of them and
        names the section in the export's ``truncated`` list when there were
        more. Never load a table whole.
    :return: ``{section name: data}``, with JSON-serialisable data (a list of
        rows is usual), or ``None`` for nothing. Never a secret: no password
        or token hashes, no sealed or signed links, no stored tokens.
    :runs: in a request, inside its transaction, before
        ``vexpenses_user_exported``.
    """


@hookspec
def vexpenses_erase_user(request, user):
    """Erase what this plugin holds about ``user``, whose account is being deleted.

    Delete the plugin's rows about the person, or make the personal data in
    them unreadable (names, addresses, client addresses, free text that may
    quote them). Rows that other people need may stay if they lose the link
    to the person: csv_import keeps the imports the user made, without their
    ``user_id``. A foreign key to ``users.id`` with ``ON DELETE CASCADE`` or
    ``SET NULL`` does part of the work, but not for copies of the address.

    :param request: the current request.
    :param user: the :class:`~vexpenses_core.models.User` being deleted; the
        row still exists, with its ``email`` and ``name``.
    :runs: in a request, inside its transaction, just before the ``users``
        row is deleted and ``vexpenses_user_deleted`` is called. A hookimpl
        that raises fails the deletion: nothing is erased.
    """
