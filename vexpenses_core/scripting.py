"""Running the app outside HTTP: commands, the worker and plugins' scripts.

:func:`bootstrap_app` loads CONFIG the way ``pserve`` does. Requests made
here and for tasks are marked as jobs in their environ, so that code which
must tell a job from an HTTP request (the audit log) asks :func:`is_job`
instead of guessing.
"""

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
    setup_logging(config_uri)
    env = bootstrap(config_uri)
    if require_plugin and not env["registry"].pm.has_plugin(require_plugin):
        env["closer"]()
        raise ConfigurationError(
            f"plugin {require_plugin!r} is not enabled in {config_uri}: "
            f"add it to vexpenses.plugins"
        )
    mark_job(env["request"], "command")
    return env
