"""Every configuration problem at once: at start-up, through plugins, and `vexpenses check`."""

import os
import pathlib
import subprocess
import sys
import types
import uuid

import pytest
import sqlalchemy as sa

from vexpenses_core import ConfigurationError, hookimpl, make_app
from vexpenses_core.check import hide_password
from vexpenses_core.db import make_engine
from vexpenses_core.plugins import check_configuration
from vexpenses_core.settings import PluginSettings, Problems, Setting, normalize_settings, number
from vexpenses_core.testing import JWT_SECRET, MYSQL_URL, write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))
PRODUCTION = {"VEXPENSES_ENV": "production", "VEXPENSES_PLUGINS": "csv_import audit_log mailer"}


def run(args, env):
    environ = {name: value for name, value in os.environ.items()
               if not name.startswith("VEXPENSES_") or name.startswith("VEXPENSES_TEST_")}
    return subprocess.run([VEXPENSES, *args], capture_output=True, text=True, timeout=120,
                          env={**environ, **env})


def test_core_settings_report_every_problem_at_once(environ_clean):
    with pytest.raises(ConfigurationError) as info:
        normalize_settings({"vexpenses.env": "production", "vexpenses.worker.threads": "many",
                            "vexpenses.language": "Portuguese"}, environ={})
    problems = info.value.problems
    assert len(problems) == 3, problems
    assert problems[0].startswith("vexpenses.worker.threads must be")
    assert problems[1].startswith("vexpenses.language (VEXPENSES_LANGUAGE) must be")
    assert problems[2].startswith("vexpenses.jwt_secret is not set")
    assert str(info.value) == "\n".join(problems)


@pytest.mark.parametrize("url,message", [
    ("localhost:3306/vexpenses", "is not a database URL"),
    ("mysql+pymysql://user:p@ss:word@db:33o6/x", "is not a database URL"),
    ("postgres://user:hunter2@db/x", "names a database SQLAlchemy does not know"),
    ("mysql://user:hunter2@db/x", "whose Python package MySQLdb is not installed"),
])
def test_a_database_url_sqlalchemy_cannot_use_is_named_without_its_password(
        environ_clean, url, message):
    with pytest.raises(ConfigurationError, match="VEXPENSES_DATABASE_URL") as info:
        normalize_settings({"vexpenses.database_url": url}, environ={})
    assert message in str(info.value)
    assert "hunter2" not in str(info.value) and "p@ss" not in str(info.value)


def test_plugin_settings_report_every_bad_value_at_once():
    settings = PluginSettings("odd", Setting("a", "1", number()), Setting("b", "1", number()))
    with pytest.raises(ConfigurationError) as info:
        settings.read({"vexpenses.odd.a": "0", "vexpenses.odd.b": "x"}, {})
    assert [p.split(" ")[0] for p in info.value.problems] == ["vexpenses.odd.a", "vexpenses.odd.b"]
    # with a Problems, the good values come back and the bad ones are kept there
    problems = Problems()
    assert settings.read({"vexpenses.odd.b": "x"}, {}, problems) == {"a": 1}
    assert len(problems.messages) == 1


def _plugin(name, **hooks):
    module = types.ModuleType(name)
    for hook, function in hooks.items():
        setattr(module, hook, hookimpl(function))
    return types.SimpleNamespace(load=lambda: module, dist=None)


def test_hook_check_settings_asks_every_plugin_even_after_one_raised(environ_clean):
    """A third-party plugin may raise or return its problems; both are reported, with
    the core's, and a plugin without the hook is fine."""
    def raising(settings):
        raise ConfigurationError("vexpenses.first.a is wrong", "vexpenses.first.b is wrong")

    def returning(settings):
        assert settings["vexpenses.env"] == "testing"  # normalised core settings
        return ["vexpenses.second.c is wrong"]

    installed = {"first": _plugin("first", vexpenses_check_settings=raising),
                 "second": _plugin("second", vexpenses_check_settings=returning),
                 "quiet": _plugin("quiet", vexpenses_check_settings=lambda: None),
                 "plain": _plugin("plain")}
    settings, pm, problems = check_configuration(
        {"vexpenses.env": "testing", "vexpenses.plugins": "first second quiet plain",
         "vexpenses.max_body_bytes": "0"}, environ={}, installed=installed)
    assert pm.has_plugin("second")
    assert problems.messages == [
        "vexpenses.max_body_bytes must be a positive whole number, not '0'",
        "vexpenses.first.a is wrong", "vexpenses.first.b is wrong",
        "vexpenses.second.c is wrong"]


def test_start_up_names_every_missing_production_setting_at_once(tmp_path, environ_clean):
    """The production path used to stop three times: the secret, the SMTP server, the sender."""
    with pytest.raises(ConfigurationError) as info:
        make_app({"vexpenses.env": "production", "vexpenses.plugins": "mailer csv_import",
                  "vexpenses.csv_import.batch_rows": "0",
                  "vexpenses.database_url": f"sqlite:///{tmp_path}/p.db"})
    text = str(info.value)
    for expected in ("VEXPENSES_JWT_SECRET", "VEXPENSES_SMTP_URL", "VEXPENSES_MAIL_FROM",
                     "vexpenses.csv_import.batch_rows"):
        assert expected in text
    assert len(info.value.problems) == 4


def test_an_unknown_plugin_is_reported_with_the_other_problems(environ_clean):
    _, pm, problems = check_configuration(
        {"vexpenses.plugins": "nope", "vexpenses.language": "x"}, environ={})
    assert pm is None
    assert len(problems.messages) == 2
    assert "Unknown plugin(s) in vexpenses.plugins: nope" in problems.messages[1]


@pytest.mark.parametrize("url,shown", [
    ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
    ("redis://app:hunter2@cache/0", "redis://app:***@cache/0"),
    ("rediss://hunter2@[::1]:6380", "rediss://***@[::1]:6380"),
    ("redis://cache:6379/0", "redis://cache:6379/0"),
])
def test_hide_password(url, shown):
    assert hide_password(url) == shown


# -- vexpenses check, the command ------------------------------------------


def test_check_lists_every_problem_and_exits_non_zero(tmp_path):
    result = run(["check", str(write_ini(tmp_path))],
                 {**PRODUCTION, "VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
                  "VEXPENSES_CSV_IMPORT_BATCH_ROWS": "none"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem: ")]
    assert len(problems) == 4, result.stdout
    for expected in ("VEXPENSES_JWT_SECRET", "VEXPENSES_SMTP_URL", "VEXPENSES_MAIL_FROM",
                     "VEXPENSES_CSV_IMPORT_BATCH_ROWS"):
        assert sum(expected in line for line in problems) == 1, (expected, problems)
    assert result.stdout.endswith("4 problems found\n")
    assert not (tmp_path / "c.db").exists()  # nothing written


@pytest.fixture
def fresh_mysql_url():
    """An empty MariaDB database, never migrated."""
    name = f"vexpenses_check_{uuid.uuid4().hex[:10]}"
    server = make_engine(MYSQL_URL)
    with server.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield f"{MYSQL_URL}/{name}?charset=utf8mb4"
    with server.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
    server.dispose()


def ini_with_plugins(tmp_path, plugins="csv_import audit_log mailer"):
    """The testing ini file, with a plugin list of its own."""
    path = write_ini(tmp_path)
    path.write_text(path.read_text().replace(
        "vexpenses.env = testing\n", f"vexpenses.env = testing\nvexpenses.plugins = {plugins}\n"))
    return path


def test_check_names_pending_migrations_then_passes_after_migrate(
        tmp_path, fresh_mysql_url, redis_url):
    """Against MariaDB and Redis, with hello added to the ini file's plugins by +hello."""
    ini = str(ini_with_plugins(tmp_path))
    env = {"VEXPENSES_ENV": "production", "VEXPENSES_PLUGINS": "+hello",
           "VEXPENSES_JWT_SECRET": JWT_SECRET,
           "VEXPENSES_SMTP_URL": "smtp://127.0.0.1:2525", "VEXPENSES_MAIL_FROM": "a@example.com",
           "VEXPENSES_DATABASE_URL": fresh_mysql_url, "VEXPENSES_REDIS_URL": redis_url}
    before = run(["check", ini], env)
    assert before.returncode == 1, before.stdout + before.stderr
    [problem] = [line for line in before.stdout.splitlines() if line.startswith("problem: ")]
    assert "is not migrated" in problem and "core_0001" in problem
    assert "hello_0001" in problem and "vexpenses migrate" in problem
    assert f"ok: Redis {redis_url} can be reached" in before.stdout
    assert sa.inspect(sa.create_engine(fresh_mysql_url)).get_table_names() == []

    assert run(["migrate", ini], env).returncode == 0
    after = run(["check", ini], env)
    assert after.returncode == 0, after.stdout + after.stderr
    assert "can be reached and is migrated" in after.stdout
    assert "the plugins csv_import, audit_log, mailer, hello (production)" in after.stdout
    assert after.stdout.endswith("all is well\n")


def test_check_reports_an_unreachable_database_and_redis_without_passwords(tmp_path):
    user = MYSQL_URL.split("://", 1)[1].split("@")[0].split(":")[0]
    host = MYSQL_URL.rsplit("@", 1)[1]
    env = {"VEXPENSES_PLUGINS": "",
           "VEXPENSES_DATABASE_URL": f"mysql+pymysql://{user}:wrong-hunter2@{host}/x",
           "VEXPENSES_REDIS_URL": "redis://:hunter2@127.0.0.1:1/0"}
    result = run(["check", str(write_ini(tmp_path))], env)
    assert result.returncode == 1
    assert "hunter2" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("problem: the database mysql+pymysql://") and "***" in line
               and "Access denied" in line for line in lines), lines
    assert any(line.startswith("problem: Redis redis://:***@127.0.0.1:1/0") for line in lines)


def test_check_reports_a_bad_server_section_without_binding(tmp_path):
    ini = write_ini(tmp_path)
    ini.write_text(ini.read_text() + "\n[server:main]\nuse = call:vexpenses_core.server:"
                   "serve_paste\nlisten = 127.0.0.1:6543\nthreadz = 4\n")
    result = run(["check", str(ini)], {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
                                       "VEXPENSES_AUTO_MIGRATE": "true"})
    assert result.returncode == 1
    assert "problem: [server:main]: Unknown adjustment 'threadz'" in result.stdout
    ini.write_text(ini.read_text().replace("threadz = 4\n", ""))
    result = run(["check", str(ini)], {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/s.db",
                                       "VEXPENSES_AUTO_MIGRATE": "true"})
    assert result.returncode == 0, result.stdout
    assert "ok: [server:main] serves on 127.0.0.1:6543" in result.stdout
