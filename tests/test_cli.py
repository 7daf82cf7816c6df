"""The `vexpenses` console script: core and plugin commands, migrate, help."""

import os
import pathlib
import subprocess
import sys

import sqlalchemy as sa

from vexpenses_core.testing import write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


def run(args, env=None, tmp_path=None):
    return subprocess.run([VEXPENSES, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def test_help_lists_core_and_plugin_commands_via_vexpenses_add_commands():
    result = run(["--help"])
    assert result.returncode == 0
    for command in ("migrate", "worker", "hello-count"):
        assert command in result.stdout
    assert result.stdout.index("migrate") < result.stdout.index("hello-count")


def test_each_command_explains_itself():
    for command in ("migrate", "worker"):
        result = run([command, "--help"])
        assert result.returncode == 0
        assert "CONFIG" in result.stdout


def test_migrate_applies_core_and_enabled_plugins(tmp_path):
    db = tmp_path / "cli.sqlite"
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{db}", "VEXPENSES_PLUGINS": "hello",
           "VEXPENSES_AUTO_MIGRATE": "false"}
    result = run(["migrate", str(write_ini(tmp_path))], env)
    assert result.returncode == 0, result.stderr
    tables = sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_table_names()
    assert {"users", "hello_greetings", "alembic_version"} <= set(tables)
    # the plugin's own command runs against the migrated database
    result = run(["hello-count", str(write_ini(tmp_path))], env)
    assert result.returncode == 0, result.stderr
    assert "0 greetings" in result.stdout


def test_migrate_skips_disabled_plugins(tmp_path):
    db = tmp_path / "core-only.sqlite"
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{db}", "VEXPENSES_PLUGINS": ""}
    assert run(["migrate", str(write_ini(tmp_path))], env).returncode == 0
    tables = sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_table_names()
    assert "users" in tables and "hello_greetings" not in tables


def test_plugin_command_refuses_when_plugin_not_enabled(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "VEXPENSES_PLUGINS": ""}
    result = run(["hello-count", str(write_ini(tmp_path))], env)
    assert result.returncode == 2
    assert "plugin 'hello' is not enabled" in result.stderr


def test_unknown_plugin_is_a_clear_cli_error(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
           "VEXPENSES_PLUGINS": "nope"}
    result = run(["migrate", str(write_ini(tmp_path))], env)
    assert result.returncode == 2
    assert "Unknown plugin(s) in vexpenses.plugins: nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_command_prints_help():
    result = run([])
    assert result.returncode == 2
    assert "migrate" in result.stdout
