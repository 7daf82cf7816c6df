"""Start-up failures a newcomer meets: one line each, no traceback, a non-zero status.

From the real ``pserve`` and the real ``vexpenses`` commands, the core's and
the plugins'. A host app that includes vexpenses still gets the exception.
"""

import os
import pathlib
import socket
import subprocess
import sys
import threading

import pytest
from pyramid.config import Configurator

from vexpenses_core import ConfigurationError
from vexpenses_core.testing import JWT_SECRET, MYSQL_URL, write_ini

BIN = pathlib.Path(sys.executable).parent
VEXPENSES = str(BIN / "vexpenses")
PSERVE = str(BIN / "pserve")
PRODUCTION_PLUGINS = "csv_import audit_log mailer"
MISSING = ("VEXPENSES_JWT_SECRET", "VEXPENSES_SMTP_URL", "VEXPENSES_MAIL_FROM")
# A MariaDB login that is refused: the right server and user, a wrong password.
USER = MYSQL_URL.split("://", 1)[1].rsplit("@", 1)[0].split(":")[0]
HOST = MYSQL_URL.rsplit("@", 1)[1]
REFUSED_DB = f"mysql+pymysql://{USER}:wrong-hunter2@{HOST}/vexpenses"
NO_REDIS = "redis://:hunter2@127.0.0.1:1/0"  # port 1: nothing listens there


def run(command, env, cwd=None, timeout=120):
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("VEXPENSES_") or name.startswith("VEXPENSES_TEST_")}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**environ, **env})


def assert_one_line_each(result, *expected):
    """Status non-zero, no traceback, and each expected text on a line of its own."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vexpenses")]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, result.stderr)
    assert "hunter2" not in result.stdout + result.stderr
    return lines


def server_ini(tmp_path, options="listen = 127.0.0.1:0"):
    """The testing ini file with the shipped files' [server:main], as pserve needs."""
    path = write_ini(tmp_path)
    path.write_text(path.read_text() + "\n[server:main]\n"
                    f"use = call:vexpenses_core.server:serve_paste\n{options}\n")
    return str(path)


# -- pserve ----------------------------------------------------------------


def test_pserve_names_every_missing_production_setting_on_one_line_each(tmp_path):
    env = {"VEXPENSES_ENV": "production", "VEXPENSES_PLUGINS": PRODUCTION_PLUGINS,
           "VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    result = run([PSERVE, server_ini(tmp_path)], env)
    assert result.returncode == 1
    lines = assert_one_line_each(result, *MISSING)
    assert all(line.startswith("vexpenses: configuration error: ") for line in lines)


@pytest.mark.parametrize("env,expected", [
    ({"VEXPENSES_PLUGINS": "csv_imprt"}, "Unknown plugin(s) in vexpenses.plugins: csv_imprt"),
    ({"VEXPENSES_DATABASE_URL": "localhost:3306/vexpenses"},
     "vexpenses.database_url (VEXPENSES_DATABASE_URL) is not a database URL"),
    ({"VEXPENSES_PLUGINS": "hello +mailer"}, "VEXPENSES_PLUGINS mixes plugin names"),
    ({"VEXPENSES_DATABASE_URL": REFUSED_DB, "VEXPENSES_AUTO_MIGRATE": "true"},
     "vexpenses: database error: cannot use the database"),
])
def test_pserve_prints_one_line_for(tmp_path, env, expected):
    result = run([PSERVE, server_ini(tmp_path)], env)
    assert_one_line_each(result, expected)


@pytest.mark.parametrize("options,expected", [
    ("listen = localhost:notaport", "cannot serve on localhost:notaport: Invalid host/port"),
    ("listen = 127.0.0.1:0\nthreadz = 4", "Unknown adjustment 'threadz'"),
    ("listen = 127.0.0.1:{busy}", "Address already in use"),
])
def test_pserve_with_a_bad_server_section_prints_one_line(tmp_path, options, expected):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        options = options.format(busy=busy.getsockname()[1])
        result = run([PSERVE, server_ini(tmp_path, options)], {})
    assert result.returncode == 1
    [line] = assert_one_line_each(result, expected)
    assert line.startswith("vexpenses: configuration error: [server:main] cannot serve on ")


def test_pserve_with_reload_reports_the_line_and_waits_for_a_change(tmp_path):
    """hupper's worker exits on the error; the monitor waits for the ini file to change."""
    env = {"VEXPENSES_ENV": "production", "VEXPENSES_PLUGINS": ""}
    with subprocess.Popen([PSERVE, "--reload", server_ini(tmp_path)], text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env={**os.environ, **env}) as process:
        stop = threading.Timer(60, process.kill)  # should the monitor never say it waits
        stop.start()
        try:
            output = []
            for line in process.stdout:
                output.append(line)
                if "Waiting for a file to change" in line:
                    break
        finally:
            stop.cancel()
            process.terminate()
    text = "".join(output)
    assert "Waiting for a file to change" in text
    assert "vexpenses: configuration error: vexpenses.jwt_secret is not set" in text
    assert "Traceback" not in text


# -- the vexpenses command, core and plugins --------------------------------


@pytest.mark.parametrize("command", [
    ["migrate"], ["create-admin", "--email", "a@example.com"], ["check"], ["worker"],
    ["revision", "-m", "x", "hello", "-c"], ["hello-count"], ["import", "FILE", "x.csv"],
    ["import-resume", "ID", "1"], ["audit", "verify"], ["audit", "prune", "--older-than", "9d"],
])
def test_every_command_says_in_one_line_that_the_ini_file_is_missing(tmp_path, command):
    args = [word if word not in ("FILE", "ID") else None for word in command]
    # CONFIG goes where the command takes it: last for revision's -c, else after the name
    where = len(args) if command[0] == "revision" else (2 if command[0] == "audit" else 1)
    args.insert(where, "missing.ini")
    args = [word for word in args if word is not None]
    result = run([VEXPENSES, *args], {}, cwd=tmp_path)
    assert result.returncode == 2
    assert_one_line_each(
        result, "vexpenses: configuration error: the configuration file 'missing.ini' "
                f"does not exist in {tmp_path}")


@pytest.mark.parametrize("text,expected", [
    ("[app:main]\nuse = egg:vexpenses-core\nthis is no setting\n",
     "cannot be read: line 3, 'this is no setting', is not `name = value`"),
    ("vexpenses.env = testing\n[app:main]\n",
     "cannot be read: line 1, 'vexpenses.env = testing', comes before any [section]"),
    ("[server:main]\nuse = egg:waitress#main\n", "has no [app:main] section"),
])
@pytest.mark.parametrize("command", ["migrate", "check"])
def test_an_ini_file_that_cannot_be_used_is_one_line(tmp_path, text, expected, command):
    ini = tmp_path / "broken.ini"
    ini.write_text(text)
    result = run([VEXPENSES, command, str(ini)], {})
    assert result.returncode == 2
    assert_one_line_each(result, f"the configuration file '{ini}' {expected}")


@pytest.mark.parametrize("command", [
    ["migrate"], ["hello-count"], ["audit", "verify"], ["import-cleanup"], ["worker"],
])
def test_every_command_names_every_missing_production_setting(tmp_path, command):
    env = {"VEXPENSES_ENV": "production", "VEXPENSES_PLUGINS": PRODUCTION_PLUGINS + " hello",
           "VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/p.db"}
    result = run([VEXPENSES, *command, str(write_ini(tmp_path))], env)
    assert result.returncode == 2
    assert_one_line_each(result, *MISSING)


def test_a_refused_database_login_is_one_line_without_the_password(tmp_path):
    result = run([VEXPENSES, "migrate", str(write_ini(tmp_path))],
                 {"VEXPENSES_DATABASE_URL": REFUSED_DB, "VEXPENSES_PLUGINS": ""})
    assert result.returncode == 2
    [line] = assert_one_line_each(result, "Access denied for user")
    assert line.startswith("vexpenses: database error: cannot use the database "
                           "(vexpenses.database_url, VEXPENSES_DATABASE_URL)")


def test_a_database_never_migrated_says_to_migrate(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/new.db", "VEXPENSES_PLUGINS": "",
           "VEXPENSES_JWT_SECRET": JWT_SECRET, "VEXPENSES_ADMIN_PASSWORD": "s3cret-admin-pass"}
    result = run([VEXPENSES, "create-admin", str(write_ini(tmp_path)),
                  "--email", "a@example.com"], env)
    assert result.returncode == 2
    assert_one_line_each(result, "the database has not been migrated; "
                                 "run `vexpenses migrate CONFIG` first")


def test_worker_with_an_unreachable_redis_stops_at_once_in_one_line(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "VEXPENSES_PLUGINS": "",
           "VEXPENSES_REDIS_URL": NO_REDIS}
    result = run([VEXPENSES, "worker", str(write_ini(tmp_path)), "-w", "1"], env)
    assert result.returncode == 2
    [line] = assert_one_line_each(result, "vexpenses: Redis error: cannot use Redis")
    assert "Connection refused" in line
    assert "workers running" not in result.stdout  # no worker was started


def test_a_worker_process_whose_redis_went_away_exits_in_one_line(tmp_path):
    """What the supervisor's children print when Redis fails after the supervisor started."""
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "VEXPENSES_PLUGINS": "",
           "VEXPENSES_REDIS_URL": NO_REDIS, "VEXPENSES_AUTO_MIGRATE": "true"}
    code = ("from vexpenses_core.worker import worker_main; "
            f"worker_main({str(write_ini(tmp_path))!r}, 3)")
    result = run([sys.executable, "-c", code], env)
    assert result.returncode == 2
    [line] = assert_one_line_each(result, "Redis error: cannot use Redis")
    assert line.startswith("vexpenses worker 3: Redis error:")


# -- a host app gets the exception, not an exit ----------------------------


def test_a_host_app_including_vexpenses_gets_the_exception(tmp_path, environ_clean):
    settings = {"vexpenses.env": "production", "vexpenses.plugins": "mailer",
                "vexpenses.database_url": f"sqlite:///{tmp_path}/h.db"}
    with pytest.raises(ConfigurationError) as info, Configurator(settings=settings) as config:
        config.include("vexpenses_core")
    assert len(info.value.problems) == 3
    assert not isinstance(info.value, SystemExit)


def test_the_paste_factory_exits_with_the_lines(tmp_path, environ_clean):
    from vexpenses_core import main

    with pytest.raises(SystemExit) as info:
        main({}, **{"vexpenses.env": "production",
                    "vexpenses.database_url": f"sqlite:///{tmp_path}/m.db"})
    assert str(info.value).startswith("vexpenses: configuration error: vexpenses.jwt_secret")
    assert isinstance(info.value.error, ConfigurationError)
