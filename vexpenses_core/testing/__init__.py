"""Test support for vexpenses and its plugins: each test on SQLite and real MariaDB.

The fixtures come with the core as a pytest plugin (the ``pytest11`` entry
point ``vexpenses``, module :mod:`vexpenses_core.testing.plugin`), so a
plugin's ``conftest.py`` only names the plugins its tests enable::

    @pytest.fixture(scope="session")
    def vexpenses_plugins():
        return "my_plugin"

The plain helpers (``make_user``, ``run_workers``, ``live_server``...) are
imported from here.

MariaDB and Redis are reached through VEXPENSES_TEST_MYSQL_URL (a server
URL without a database; default root on 127.0.0.1:3306) and
VEXPENSES_TEST_REDIS_URL (default db 15 on 127.0.0.1:6379). Each test run
creates its own MariaDB database and drops it at the end.
"""

from .databases import clean_tables, deadlock_error, scratch_mysql_database
from .hosts import HOSTILE_HOSTS, assert_not_reflected, hostile_host_environ
from .processes import serving_pid
from .server import live_server
from .settings import JWT_SECRET, MYSQL_URL, REDIS_URL, base_settings
from .users import bearer, make_user
from .workers import run_workers, wait_for, worker_pids, write_ini

__all__ = [
    "HOSTILE_HOSTS",
    "JWT_SECRET",
    "MYSQL_URL",
    "REDIS_URL",
    "assert_not_reflected",
    "base_settings",
    "bearer",
    "clean_tables",
    "deadlock_error",
    "scratch_mysql_database",
    "hostile_host_environ",
    "live_server",
    "make_user",
    "run_workers",
    "serving_pid",
    "wait_for",
    "worker_pids",
    "write_ini",
]
