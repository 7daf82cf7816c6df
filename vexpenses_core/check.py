"""``vexpenses check CONFIG``: every problem of a configuration, in one run.

First the settings of the core and of every enabled plugin (each plugin
answers ``vexpenses_check_settings``); when they are right, whether the
database can be reached and is migrated, whether Redis can be reached, and
whether an S3 bucket of ``vexpenses.storage_url`` answers.
Nothing is written: the app is not built, no migration is applied. One
line per finding, no password ever printed.
"""

import os
import re
import types
from urllib.parse import urlsplit, urlunsplit

from pyramid.paster import get_appsettings

from .plugins import check_configuration
from .scripting import check_config_file, startup_problems


def run_check(config_uri, out):
    """Print what is right and what is wrong with CONFIG to ``out``; return the exit status."""
    check_config_file(config_uri)
    settings, pm, problems = check_configuration(get_appsettings(config_uri))
    report = Report(out)
    if problems:
        for message in problems.messages:
            report.problem(message)
        report.line("not checked: the database and Redis, until the settings are right")
        return report.finish()
    plugins = [name for name, _ in pm.list_name_plugin() if name != "core"]
    report.ok(f"the settings of the core and of {_plugins(plugins)} "
              f"({settings['vexpenses.env']})")
    check_server(config_uri, report)
    check_database(settings, pm, report)
    check_redis(settings, report)
    check_storage(settings, report)
    return report.finish()


def check_server(config_uri, report):
    """Check the options of a waitress ``[server:main]`` without binding its address,
    which a running server may hold."""
    import configparser

    from waitress.adjustments import Adjustments

    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read(config_uri.partition("#")[0], encoding="utf-8")
    if not parser.has_section("server:main"):
        return  # not served by pserve
    options = {name: value for name, value in parser.items("server:main", raw=True)
               if name not in parser.defaults()}
    use = options.pop("use", "")
    if not ("waitress" in use or "vexpenses_core.server" in use):
        return
    try:
        Adjustments(**options)
    except ValueError as exc:
        report.problem(f"[server:main]: {str(exc).rstrip('.')}; its options are those of "
                       f"egg:waitress#main")
    else:
        report.ok(f"[server:main] serves on {options.get('listen') or 'its default address'}")


class Report:
    def __init__(self, out):
        self.out = out
        self.problems = 0

    def line(self, text):
        print(text, file=self.out)

    def ok(self, text):
        self.line(f"ok: {text}")

    def problem(self, text):
        self.problems += 1
        self.line(f"problem: {text}")

    def finish(self):
        if self.problems:
            self.line(f"{self.problems} problem{'s' if self.problems > 1 else ''} found")
            return 1
        self.line("all is well")
        return 0


def _plugins(names):
    if not names:
        return "no plugin"
    return f"the plugin{'s' if len(names) > 1 else ''} {', '.join(names)}"


def check_database(settings, pm, report):
    """Connect, then compare the applied migrations with the enabled plugins' heads."""
    from sqlalchemy.engine import make_url

    from .db import make_engine
    from .migrate import pending_revisions

    url = make_url(settings["vexpenses.database_url"])
    shown = url.render_as_string(hide_password=True)
    auto = settings["vexpenses.auto_migrate"]
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not os.path.exists(url.database):
        if auto:
            report.ok(f"the database {shown} will be created and migrated at start-up "
                      f"(vexpenses.auto_migrate)")
        else:
            report.problem(f"the database {shown} does not exist yet: "
                           f"run `vexpenses migrate CONFIG` to create it")
        return
    engine = make_engine(settings["vexpenses.database_url"])
    try:
        registry = types.SimpleNamespace(pm=pm, dbengine=engine, settings=settings)
        pending = sorted(pending_revisions(registry))
    except Exception as exc:
        lines = startup_problems(exc)
        if lines is None and not _unknown_revision(exc):
            raise
        report.problem(f"the database {shown}: " + (
            lines[0].partition(": ")[2] if lines else
            f"{exc}: it was migrated by another version or with a plugin that is not "
            f"installed here"))
        return
    finally:
        engine.dispose()
    if not pending:
        report.ok(f"the database {shown} can be reached and is migrated")
    elif auto:
        report.ok(f"the database {shown} can be reached; {_migrations(pending)} will be "
                  f"applied at start-up (vexpenses.auto_migrate)")
    else:
        report.problem(f"the database {shown} is not migrated: {_migrations(pending)} "
                       f"pending; run `vexpenses migrate CONFIG`")


def _migrations(pending):
    return (f"{len(pending)} migration{'s' if len(pending) > 1 else ''} "
            f"({', '.join(pending)})")


def _unknown_revision(exc):
    from alembic.script.revision import ResolutionError
    from alembic.util import CommandError

    return isinstance(exc, ResolutionError | CommandError)


def check_redis(settings, report):
    """PING the Redis of ``vexpenses.redis_url``, when there is one."""
    from .redis_client import connect

    url = settings["vexpenses.redis_url"]
    if not url:
        report.ok("no Redis configured: an in-memory stand-in, and tasks run in the "
                  "web process")
        return
    shown = hide_password(url)
    # Plain or through Sentinel (which names the master), as the app connects.
    client = connect(url, settings["vexpenses.redis_timeout"])
    try:
        client.ping()
    except Exception as exc:
        lines = startup_problems(exc)
        if lines is None:
            raise
        report.problem(f"Redis {shown}: {lines[0].partition(': ')[2]}")
        return
    finally:
        client.close()
    report.ok(f"Redis {shown} can be reached")


def check_storage(settings, report):
    """With an ``s3://`` ``vexpenses.storage_url``, GET a key that is never written.

    Nothing is written, and the error codes tell a bucket that answers
    (NoSuchKey; AccessDenied too, for credentials without s3:ListBucket)
    from a wrong one or wrong credentials.
    """
    url = settings["vexpenses.storage_url"]
    if not url.startswith("s3://"):
        return
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ImportError:
        return  # the plugin that stores uploads there has said so
    parts = urlsplit(url)
    client = boto3.session.Session().client("s3", config=botocore.config.Config(
        connect_timeout=5, read_timeout=10, retries={"max_attempts": 1}))
    key = (parts.path.strip("/") + "/" if parts.path.strip("/") else "") + ".vexpenses-check"
    try:
        client.get_object(Bucket=parts.netloc, Key=key)
        code = "found"
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
    except botocore.exceptions.BotoCoreError as exc:
        report.problem(f"the storage {url}: {exc}")
        return
    finally:
        client.close()
    if code in ("NoSuchKey", "AccessDenied", "found"):
        report.ok(f"the storage {url} answers")
    else:
        report.problem(f"the storage {url}: {code} (the AWS_* variables or ~/.aws give the "
                       f"credentials, region and endpoint)")


def hide_password(url):
    """``url`` with its password, if any, replaced by ``***``."""
    parts = urlsplit(url)
    if "sentinel_password=" in parts.query:  # redis+sentinel://...?sentinel_password=
        parts = parts._replace(query=re.sub(r"(sentinel_password=)[^&]*", r"\1***",
                                            parts.query))
        url = urlunsplit(parts)
    if "@" not in parts.netloc:
        return url
    userinfo, _, host = parts.netloc.rpartition("@")
    if ":" not in userinfo:  # redis://PASSWORD@host is a password too
        return urlunsplit(parts._replace(netloc=f"***@{host}"))
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
