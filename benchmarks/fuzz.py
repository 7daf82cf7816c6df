"""The schema fuzz of tests/test_schema_fuzz.py, with any seed and a larger budget.

    .venv/bin/python benchmarks/fuzz.py [--seed N] [--max-examples 500] [--database URL]

Serves the core and the three plugins with waitress on 127.0.0.1 (real Redis,
rate limits off, the console mailer), against a fresh SQLite file by default or
a MariaDB URL, runs Schemathesis from /api/v1/openapi.json with every check
(vexpenses_core.fuzzing), and prints each finding, the seed, the budget and the
time taken. Exits 1 when anything was found. A random seed is chosen and
printed when none is given, so that a finding can be replayed.
"""

import argparse
import os
import random
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from test_schema_fuzz import SERVICE_PLUGINS, fuzz_settings, token_source  # noqa: E402

from vexpenses_core import fuzzing, make_app  # noqa: E402
from vexpenses_core.testing import REDIS_URL, base_settings, live_server  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--database", default=None, help="default: a new SQLite file")
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)

    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or f"sqlite:///{tmp}/fuzz.sqlite"

        def make(base_url):
            settings = base_settings(database, " ".join(SERVICE_PLUGINS), **{
                **fuzz_settings(base_url, args.redis_url, os.path.join(tmp, "uploads")),
                "vexpenses.auto_migrate": "true",
                "vexpenses.redis_prefix": f"fuzz:{uuid.uuid4().hex}:",
            })
            return _Served(make_app(settings))

        with live_server(make) as served:
            registry = served.app.registry
            started = time.monotonic()
            findings = fuzzing.fuzz(served.base_url, token_source(registry), seed=seed,
                                    max_examples=args.max_examples)
            elapsed = time.monotonic() - started
            prefix = registry.settings["vexpenses.redis_prefix"]
            for key in registry.redis.scan_iter(match=prefix + "*", count=1000):
                registry.redis.delete(key)

    for finding in findings:
        print(finding, end="\n\n")
    print(f"seed {seed}, max examples {args.max_examples}, database "
          f"{database.split('://')[0]}: {len(findings)} finding(s) in {elapsed:.0f} s")
    return 1 if findings else 0


class _Served:
    """What live_server needs of a TestApp: the WSGI app as ``.app``."""

    def __init__(self, app):
        self.app = app


if __name__ == "__main__":
    sys.exit(main())
