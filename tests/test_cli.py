"""The `vexpenses` console script: core and plugin commands, migrate, help."""

import os
import pathlib
import subprocess
import sys

import sqlalchemy as sa

from vexpenses_core.testing import write_ini

ROOT = pathlib.Path(__file__).resolve().parent.parent
VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


def run(args, env=None, tmp_path=None):
    return subprocess.run([VEXPENSES, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


def test_hook_add_commands_lists_core_and_plugin_commands_in_help():
    """Core and plugin commands both arrive through vexpenses_add_commands."""
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


def test_migrate_says_what_it_applied(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/said.sqlite",
           "VEXPENSES_PLUGINS": "hello", "VEXPENSES_AUTO_MIGRATE": "false"}
    ini = str(write_ini(tmp_path))
    first = run(["migrate", ini], env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("applied ") and "core_0001" in first.stdout
    assert "hello_0001" in first.stdout
    again = run(["migrate", ini], env)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "nothing to apply: the database was already up to date\n"


def test_migrate_says_what_it_applied_when_the_ini_auto_migrates(tmp_path):
    """development.ini turns auto-migration on: loading the app must not apply
    everything before the command can, or it reports nothing to apply, and
    Alembic's INFO lines must not flood the terminal."""
    ini = tmp_path / "development.ini"
    ini.write_text((ROOT / "development.ini").read_text())
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/dev.sqlite",
           "VEXPENSES_UPLOAD_DIR": str(tmp_path / "uploads")}
    env.pop("VEXPENSES_AUTO_MIGRATE", None)
    result = subprocess.run([VEXPENSES, "migrate", str(ini)], capture_output=True, text=True,
                            timeout=120, env={k: v for k, v in os.environ.items()
                                              if k != "VEXPENSES_AUTO_MIGRATE"} | env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("applied ") and "core_0001" in result.stdout
    assert "alembic" not in result.stderr, result.stderr


def test_version_names_the_core_and_each_installed_plugin():
    import importlib.metadata

    result = run(["--version"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"vexpenses-core {importlib.metadata.version('vexpenses-core')}"
    for name in ("audit_log", "csv_import", "hello", "mailer"):
        assert any(line.startswith(f"  plugin {name}: ") for line in lines), lines


def test_create_admin_options_have_help():
    result = run(["create-admin", "--help"])
    assert "the admin's e-mail address" in result.stdout
    assert "the admin's name" in result.stdout


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


def test_create_admin_takes_the_password_from_the_environment(tmp_path):
    from vexpenses_core.testing import JWT_SECRET

    db = tmp_path / "admin.sqlite"
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{db}", "VEXPENSES_PLUGINS": "",
           "VEXPENSES_JWT_SECRET": JWT_SECRET}
    ini = str(write_ini(tmp_path))
    assert run(["migrate", ini], env).returncode == 0
    result = run(["create-admin", ini, "--email", "Boss@Example.com", "--name", "The Boss"],
                 {**env, "VEXPENSES_ADMIN_PASSWORD": "s3cret-admin-pass"})
    assert result.returncode == 0, result.stderr
    assert "created admin boss@example.com" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT is_admin, password_hash FROM users").one()
    assert row[0] == 1 and row[1].startswith("$argon2id$")
    # running it again promotes instead of failing
    again = run(["create-admin", ini, "--email", "boss@example.com"],
                {**env, "VEXPENSES_ADMIN_PASSWORD": "s3cret-admin-pass"})
    assert again.returncode == 0 and "now an admin" in again.stdout


def test_create_admin_refuses_without_a_password_source(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
           "VEXPENSES_AUTO_MIGRATE": "true"}
    result = subprocess.run([VEXPENSES, "create-admin", str(write_ini(tmp_path)), "--email",
                             "a@example.com"], capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, **env))
    assert result.returncode == 2
    assert "VEXPENSES_ADMIN_PASSWORD" in result.stderr


def test_create_admin_validates_the_password(tmp_path):
    env = {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
           "VEXPENSES_ADMIN_PASSWORD": "short", "VEXPENSES_AUTO_MIGRATE": "true"}
    result = run(["create-admin", str(write_ini(tmp_path)), "--email", "a@example.com"], env)
    assert result.returncode == 2
    assert "at least 8 characters" in result.stderr


def test_create_admin_has_no_password_option():
    result = run(["create-admin", "--help"])
    assert "--password" not in result.stdout


def test_migrate_still_works_after_a_plugin_is_disabled(tmp_path):
    """The disabled plugin's revisions stay known; its tables are left alone."""
    db = tmp_path / "toggle.sqlite"
    ini = str(write_ini(tmp_path))
    base = {"VEXPENSES_DATABASE_URL": f"sqlite:///{db}"}
    assert run(["migrate", ini], {**base, "VEXPENSES_PLUGINS": "hello"}).returncode == 0
    result = run(["migrate", ini], {**base, "VEXPENSES_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    tables = sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_table_names()
    assert "hello_greetings" in tables


def test_create_admin_announces_the_admin_as_register_does(tmp_path, monkeypatch, capsys):
    """create-admin calls the API's UserService.register, hook included: with the
    mailer enabled the new admin gets the welcome e-mail, as before."""
    import argparse

    from vexpenses_core import hookimpl
    from vexpenses_core.accounts import commands

    registered = []

    class Recorder:
        @hookimpl
        def vexpenses_user_registered(self, request, user):
            registered.append((user.email, user.is_admin))

    def bootstrap_app(config_uri):
        env = real_bootstrap(config_uri)
        env["request"].pm.register(Recorder())
        return env

    real_bootstrap = commands.bootstrap_app
    monkeypatch.setattr(commands, "bootstrap_app", bootstrap_app)
    # The ini file's logging would outlive the test, writing to pytest's closed stderr.
    from vexpenses_core import scripting

    monkeypatch.setattr(scripting, "setup_logging", lambda config_uri: None)
    for name, value in {"VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite",
                        "VEXPENSES_PLUGINS": "", "VEXPENSES_AUTO_MIGRATE": "true",
                        "VEXPENSES_ADMIN_PASSWORD": "s3cret-admin-pass"}.items():
        monkeypatch.setenv(name, value)
    args = argparse.Namespace(config_uri=str(write_ini(tmp_path)), email="boss@example.com",
                              name="The Boss")
    assert commands.create_admin(args) == 0
    assert registered == [("boss@example.com", True)]
    assert commands.create_admin(args) == 0  # a promotion is not a registration
    assert registered == [("boss@example.com", True)]


def test_ctrl_c_in_any_command_is_one_line(monkeypatch, capsys):
    """A command interrupted where it does not handle Ctrl-C itself: no traceback."""
    from vexpenses_core import check, cli

    def interrupted(config_uri, out):
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "run_check", interrupted)
    assert cli.main(["check", "development.ini"]) == 130
    assert capsys.readouterr().err == "vexpenses: interrupted\n"
