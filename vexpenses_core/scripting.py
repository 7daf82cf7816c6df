"""Running the app outside HTTP: commands, the worker and plugins' scripts.

:func:`bootstrap_app` loads CONFIG the way ``pserve`` does. Requests made
here and for tasks are marked as jobs in their environ, so that code which
must tell a job from an HTTP request (the audit log) asks :func:`is_job`
instead of guessing.
"""

import ast
import configparser
import os
import re

from pyramid.paster import bootstrap, setup_logging

from .settings import ConfigurationError

#: The environ key naming the job a request runs: a task's name, or "command".
JOB_KEY = "vexpenses.job"


def mark_job(request, name):
    """Mark ``request`` as made for the job ``name`` rather than routed from HTTP."""
    request.environ[JOB_KEY] = name


def is_job(request):
    """True for a task's or a command's request; False for one that came over HTTP."""
    return bool(request.environ.get(JOB_KEY))


def bootstrap_app(config_uri, require_plugin=None):
    """Load CONFIG like ``pserve`` does and return its environment dict.

    ``env["registry"]`` holds settings, the plugin manager and services;
    ``env["request"]`` is a request for scripts, whose database work goes
    inside ``with env["request"].tm:``. Close it with ``env["closer"]()``, or
    use the dict as a context manager (Pyramid's ``AppEnvironment``):
    ``with bootstrap_app(CONFIG) as env:`` closes it on the way out.
    With ``require_plugin``, refuse to go on when that plugin is not enabled
    in CONFIG.
    """
    try:
        setup_logging(config_uri)
        env = bootstrap(config_uri)
    except StartupFailed as exc:  # vexpenses' app factory: the caller reports it
        raise exc.error from None
    except (OSError, LookupError, configparser.Error):
        check_config_file(config_uri)  # says so in one line when the file is at fault
        raise
    if require_plugin and not env["registry"].pm.has_plugin(require_plugin):
        env["closer"]()
        raise ConfigurationError(
            f"plugin {require_plugin!r} is not enabled in {config_uri}: "
            f"add it to vexpenses.plugins"
        )
    mark_job(env["request"], "command")
    return env


APP_SECTIONS = ("app", "application", "composite", "composit", "pipeline", "filter-app")


def check_config_file(config_uri):
    """Refuse a CONFIG file that does not exist, cannot be parsed or has no app
    section, naming it, before anything reads it."""
    path, _, name = config_uri.partition("#")
    if "://" in path:  # another plaster scheme: its loader reports its own errors
        return
    if not os.path.isfile(path):
        raise ConfigurationError(
            f"the configuration file {path!r} does not exist"
            + (f" in {os.getcwd()}" if not os.path.isabs(path) else "")
            + ": give the path of an ini file such as development.ini or production.ini"
        )
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        if isinstance(exc, configparser.MissingSectionHeaderError):
            why = f"line {exc.lineno}, {exc.line.strip()!r}, comes before any [section]"
        elif isinstance(exc, configparser.ParsingError) and exc.errors:
            lineno, line = exc.errors[0]  # the line as its repr()
            why = f"line {lineno}, {ast.literal_eval(line).strip()!r}, is not `name = value`"
        else:
            why = str(exc).splitlines()[0].rstrip(".")
        raise ConfigurationError(f"the configuration file {path!r} cannot be read: {why}"
                                 ) from None
    name = name or "main"
    if not any(parser.has_section(f"{kind}:{name}") for kind in APP_SECTIONS):
        raise ConfigurationError(
            f"the configuration file {path!r} has no [app:{name}] section: vexpenses' "
            f"settings go there, under `use = egg:vexpenses-core`"
        )


# -- Errors that stop start-up: one line each, never a traceback -----------

# MySQL/MariaDB errors that say the server, the login or the database is wrong.
MYSQL_CONNECT_ERRORS = {1044, 1045, 1049, 1698, 2002, 2003, 2005, 2006, 2013}
MYSQL_NO_TABLE = 1146
DATABASE = "the database (vexpenses.database_url, VEXPENSES_DATABASE_URL)"
REDIS = "Redis (vexpenses.redis_url, VEXPENSES_REDIS_URL)"


def startup_problems(error):
    """The lines that explain ``error``, when it is a configuration problem; else ``None``.

    A :class:`ConfigurationError` gives one line per problem. So do the
    failures a new installation meets: a database or a Redis that cannot be
    reached or refuses the login, a database that was never migrated, a
    migration refused. Anything else is a bug, which keeps its traceback.
    The lines never hold a password: the drivers' messages name the host and
    the user only.
    """
    from .migrate import MigrationRefused

    if isinstance(error, ConfigurationError):
        return [f"configuration error: {problem}" for problem in error.problems]
    if isinstance(error, MigrationRefused):
        return [f"migration refused: {error}"]
    return _database_problem(error) or _redis_problem(error)


def _database_problem(error):
    import sqlalchemy.exc

    if not isinstance(error, sqlalchemy.exc.DBAPIError) or error.orig is None:
        return None
    from .transactions import mysql_error_code

    args = getattr(error.orig, "args", ())
    code = mysql_error_code(error)
    text = (str(args[1]) if code is not None and len(args) > 1 else str(error.orig)).rstrip(".")
    table = re.match(r"no such table: (\S+)", text) if code is None else None
    if code == MYSQL_NO_TABLE or table:
        return [f"database error: {text}: the database has not been migrated; "
                f"run `vexpenses migrate CONFIG` first"]
    if code in MYSQL_CONNECT_ERRORS or text == "unable to open database file":
        return [f"database error: cannot use {DATABASE}: {text}. Check the URL, its user "
                f"and password, and that the server is running and the database exists"]
    return None


def _redis_problem(error):
    import redis.exceptions

    refused = isinstance(error, redis.exceptions.ResponseError) and str(error).startswith(
        ("NOAUTH", "WRONGPASS"))
    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError) \
            or refused:
        text = str(error).rstrip(".")
        return [f"Redis error: cannot use {REDIS}: {text}. Check the URL, its password, "
                f"and that the server is running"]
    return None


class StartupFailed(SystemExit):
    """The app cannot start for a reason :func:`startup_problems` explains.

    The PasteDeploy factory raises it in place of ``error``: a
    ``SystemExit``, so that ``pserve`` prints its lines without a traceback
    and exits with status 1. :func:`bootstrap_app` turns it back into
    ``error`` for the ``vexpenses`` command.
    """

    def __init__(self, error):
        self.error = error
        super().__init__("\n".join(f"vexpenses: {line}" for line in startup_problems(error)))
