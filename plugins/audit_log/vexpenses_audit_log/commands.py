"""``vexpenses audit verify CONFIG`` and ``vexpenses audit prune CONFIG --older-than 90d``."""

import argparse
import contextlib
import datetime
import re
import sys
import uuid

from vexpenses_core.scripting import bootstrap_app

from . import chain

_AGE = re.compile(r"^\s*([0-9]{1,6})\s*([dhw]?)\s*$", re.IGNORECASE)
_UNITS = {"": "days", "d": "days", "h": "hours", "w": "weeks"}


def parse_age(text):
    """``90d``, ``12h``, ``2w`` (a bare number is days) -> a timedelta."""
    match = _AGE.match(text or "")
    if not match or int(match.group(1)) < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an age: use a whole number and d, h or w, e.g. 90d"
        )
    return datetime.timedelta(**{_UNITS[match.group(2).lower()]: int(match.group(1))})


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


@contextlib.contextmanager
def audit_app(config_uri):
    """CONFIG's app, as :func:`bootstrap_app` gives it, closed on the way out and
    then its database connections, so that a process running commands keeps none."""
    with contextlib.ExitStack() as stack:
        env = bootstrap_app(config_uri, require_plugin="audit_log")
        stack.callback(env["registry"].dbengine.dispose)
        yield stack.enter_context(env)


def cmd_verify(args):
    with audit_app(args.config_uri) as env:
        registry = env["registry"]
        result = chain.verify(registry.dbengine, registry.audit_log_settings.chain_key)
    if not result.ok:
        print(f"audit log BROKEN: {result.problem}")
        print(f"({result.rows} rows verified before it)")
        return 1
    if result.rows == 0:
        print("audit log OK: no rows")
    else:
        print(f"audit log OK: {result.rows} rows, {result.first_id} to {result.last_id}; "
              f"head hash {result.last_hash}")
        if result.erased:
            print(f"{result.erased} rows with erased details (their people's data was "
                  "erased on request; the rows and the chain are whole)")
    return 0


def cmd_prune(args):
    with audit_app(args.config_uri) as env:
        registry = env["registry"]
        request = env["request"]
        cutoff = chain.utcnow() - args.older_than
        deleted, first_kept = chain.prune(registry.dbengine, cutoff, args.batch_size)
        # The prune is itself an action: a hook call that the log records.
        request.environ["vexpenses.request_id"] = f"cli-{uuid.uuid4().hex}"
        registry.pm.hook.vexpenses_audit_pruned(
            request=request, deleted=deleted, cutoff=cutoff, first_kept_id=first_kept
        )
        registry.audit_log.flush(direct=True)
        registry.audit_log.close()
    print(f"deleted {deleted} audit rows created before {cutoff.isoformat()}; "
          f"the chain now starts at row {first_kept}")
    return 0


def add_commands(subparsers):
    audit = subparsers.add_parser(
        "audit",
        help="(audit_log plugin) verify the audit log's hash chain, or prune old rows",
        description="Check or trim the audit log of the audit_log plugin.",
    )
    actions = audit.add_subparsers(dest="audit_action", metavar="ACTION")

    verify = actions.add_parser(
        "verify",
        help="check every row against the hash chain",
        description="Walk the audit log's hash chain from its first row to its head and "
        "report the first row that was altered or removed. Exit status 1 when the chain "
        "is broken, 0 when it holds.",
    )
    verify.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    verify.set_defaults(func=cmd_verify)

    prune = actions.add_parser(
        "prune",
        help="delete old rows, keeping the chain verifiable",
        description="Delete the audit rows created before now minus AGE, oldest first, in "
        "batches of --batch-size rows per transaction. The chain then starts at the first "
        "row kept, and the prune itself is recorded as a row.",
    )
    prune.add_argument("config_uri", metavar="CONFIG", help="ini file, e.g. production.ini")
    prune.add_argument("--older-than", required=True, type=parse_age, metavar="AGE",
                       help="e.g. 90d (days), 12h (hours) or 2w (weeks)")
    prune.add_argument("--batch-size", type=_positive, default=1000, metavar="N",
                       help="rows deleted per transaction (default 1000)")
    prune.set_defaults(func=cmd_prune)

    def usage(args):
        audit.print_help(sys.stderr)
        return 2

    audit.set_defaults(func=usage)
