"""The ``vexpenses`` console script.

Subcommands come from the core and from every installed plugin through
``vexpenses_add_commands``; a command that needs the app loads CONFIG with
:func:`vexpenses_core.scripting.bootstrap_app`.
"""

import argparse
import contextlib
import importlib.metadata
import logging
import os
import sys

from .plugins import build_plugin_manager, installed_plugins
from .scripting import bootstrap_app, startup_problems
from .settings import ENV_SETTINGS

log = logging.getLogger(__name__)
AUTO_MIGRATE = ENV_SETTINGS["vexpenses.auto_migrate"]


def cmd_migrate(args):
    from .migrate import upgrade

    # The app is loaded without auto-migration (development.ini turns it
    # on), or it would apply everything first and leave nothing to report.
    with auto_migrate_off(), bootstrap_app(args.config_uri) as env:
        applied = upgrade(env["registry"])
    if applied:
        print(f"applied {len(applied)} migration{'s' if len(applied) > 1 else ''} "
              f"({', '.join(applied)}); the database is up to date")
    else:
        print("nothing to apply: the database was already up to date")


@contextlib.contextmanager
def auto_migrate_off():
    """Load the app with ``vexpenses.auto_migrate`` off, whatever CONFIG says."""
    saved = os.environ.get(AUTO_MIGRATE)
    os.environ[AUTO_MIGRATE] = "false"  # the variable wins over the ini file
    try:
        yield
    finally:
        if saved is None:
            del os.environ[AUTO_MIGRATE]
        else:
            os.environ[AUTO_MIGRATE] = saved


def cmd_check(args):
    from .check import run_check

    return run_check(args.config_uri, sys.stdout)


def cmd_worker(args):
    from .worker import run_supervisor

    return run_supervisor(args.config_uri, args.workers)


def add_core_commands(subparsers):
    migrate = subparsers.add_parser(
        "migrate",
        help="apply the database migrations of the core and every enabled plugin",
        description="Upgrade the database to the newest revision of the core and of "
        "every plugin enabled in CONFIG. Safe to run again.",
    )
    migrate.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    migrate.set_defaults(func=cmd_migrate)

    worker = subparsers.add_parser(
        "worker",
        help="run background task worker processes",
        description="Start N worker processes that load CONFIG and its plugins and run "
        "tasks from Redis. A worker that dies is replaced; its unfinished task is "
        "delivered again to another worker. SIGTERM or Ctrl-C stops them gracefully.",
    )
    worker.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    worker.add_argument("--workers", "-w", type=int, default=2, metavar="N",
                        help="number of worker processes (default: 2)")
    worker.set_defaults(func=cmd_worker)
    add_revision_command(subparsers)

    check = subparsers.add_parser(
        "check",
        help="report every missing or bad setting, then whether the database and "
        "Redis can be used",
        description="Check the settings of the core and of every plugin enabled in "
        "CONFIG, and report every problem at once. When they are right, check that the "
        "database can be reached and is migrated, and that Redis can be reached. Writes "
        "nothing. Exits with status 0 when all is well, 1 otherwise.",
    )
    check.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    check.set_defaults(func=cmd_check)


# -- vexpenses revision ---------------------------------------------------


def cmd_revision(args):
    from .migrate import revision

    with bootstrap_app(args.config) as env:
        path = revision(env["registry"], args.branch, args.message)
    print(f"wrote {path}")


def add_revision_command(subparsers):
    parser = subparsers.add_parser(
        "revision",
        help="autogenerate a migration on a plugin's branch",
        description="Compare PLUGIN's models with the database of CONFIG (migrated to "
        "its head) and write a new revision on PLUGIN's Alembic branch, in its "
        "migrations/ folder. PLUGIN is a plugin's short name, or core. Read the file "
        "before you commit it: autogenerate does not see every change.",
    )
    parser.add_argument("branch", metavar="PLUGIN", help="e.g. hello, or core")
    parser.add_argument("-m", "--message", required=True, help="what the revision does")
    parser.add_argument("-c", "--config", default="development.ini", metavar="CONFIG",
                        help="ini file whose database and plugins to use "
                        "(default: development.ini)")
    parser.set_defaults(func=cmd_revision)


def version_text():
    """``vexpenses-core X``, then each installed plugin with its distribution's version."""
    lines = [f"vexpenses-core {importlib.metadata.version('vexpenses-core')}"]
    for name, entry_point in sorted(installed_plugins().items()):
        dist = entry_point.dist
        lines.append(f"  plugin {name}: {dist.name} {dist.version}" if dist
                     else f"  plugin {name}")
    return "\n".join(lines)


class PrintVersion(argparse.Action):
    """``--version``, one line each: argparse's own action would reflow them."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit()


def make_parser():
    parser = argparse.ArgumentParser(
        prog="vexpenses",
        description="Manage a vexpenses service: database migrations, background "
        "workers, and commands added by installed plugins.",
    )
    parser.add_argument("--version", action=PrintVersion,
                        help="show the versions of the core and the installed plugins")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Every installed plugin may add commands, enabled or not: which plugins
    # are enabled depends on the CONFIG given to the command itself.
    pm = build_plugin_manager(list(installed_plugins()))
    pm.hook.vexpenses_add_commands(subparsers=subparsers)
    return parser


def main(argv=None):
    try:
        parser = make_parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return args.func(args) or 0
    except KeyboardInterrupt:
        # Ctrl-C at any point of any command: one line, the shell's status for SIGINT.
        print("vexpenses: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # Configuration errors, an unreachable database or Redis: one line each.
        lines = startup_problems(exc)
        if lines is None:
            raise
        for line in lines:
            print(f"vexpenses: {line}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
