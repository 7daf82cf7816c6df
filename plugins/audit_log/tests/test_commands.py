"""`vexpenses audit verify CONFIG` and `vexpenses audit prune CONFIG --older-than AGE`."""

import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys

import pytest
import sqlalchemy as sa
from vexpenses_audit_log.commands import parse_age
from vexpenses_audit_log.testing import stored_rows, write_records

import vexpenses_core.cli
import vexpenses_core.scripting
from vexpenses_core.testing import JWT_SECRET, write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))


def command_env(settings, plugins="audit_log"):
    return {
        "VEXPENSES_ENV": "testing",
        "VEXPENSES_DATABASE_URL": settings["vexpenses.database_url"],
        "VEXPENSES_REDIS_URL": "",
        "VEXPENSES_PLUGINS": plugins,
        "VEXPENSES_JWT_SECRET": JWT_SECRET,
        "VEXPENSES_AUTO_MIGRATE": "false",
    }


@pytest.fixture
def audit(app, monkeypatch, tmp_path, capsys):
    """Run `vexpenses audit ...` in this process against the test app's database."""
    for name, value in command_env(app.app.registry.settings).items():
        monkeypatch.setenv(name, value)
    # The command configures logging from the ini; the test runner keeps its own.
    monkeypatch.setattr(vexpenses_core.scripting, "setup_logging", lambda config_uri: None)
    ini = str(write_ini(tmp_path))

    def run(action, *options):
        code = vexpenses_core.cli.main(["audit", action, ini, *options])
        out = capsys.readouterr()
        return code, out.out + out.err

    return run


def test_verify_reports_a_sound_chain(app, audit):
    assert audit("verify") == (0, "audit log OK: no rows\n")
    write_records(app.app.registry, 3)
    code, out = audit("verify")
    assert code == 0
    assert out.startswith("audit log OK: 3 rows, 1 to 3; head hash ")
    assert stored_rows(app)[-1]["hash"] in out


def test_verify_names_the_first_altered_row_and_fails(app, audit):
    write_records(app.app.registry, 4)
    with app.app.registry.dbengine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log_entries SET user_id = 1 WHERE id = 3"))
        conn.execute(sa.text("DELETE FROM audit_log_entries WHERE id = 4"))
    code, out = audit("verify")
    assert code == 1
    assert out == ("audit log BROKEN: row 3 was altered: its contents do not match its hash\n"
                   "(2 rows verified before it)\n")


def test_hook_audit_pruned_is_recorded_when_prune_deletes_old_rows(app, audit):
    registry = app.app.registry
    write_records(registry, 3, age=datetime.timedelta(days=120))
    write_records(registry, 1)
    code, out = audit("prune", "--older-than", "90d", "--batch-size", "2")
    assert code == 0
    assert out.startswith("deleted 3 audit rows created before ")
    assert out.endswith("the chain now starts at row 4\n")
    kept, pruned = stored_rows(app)
    assert kept["id"] == 4
    assert (pruned["action"], pruned["user_id"], pruned["hook"]) == (
        "Audit log pruned", None, "vexpenses_audit_pruned")
    assert pruned["request_id"].startswith("cli-")
    payload = json.loads(pruned["payload"])
    assert payload["deleted"] == 3 and payload["first_kept_id"] == 4
    assert audit("verify")[0] == 0


@pytest.mark.parametrize("text, expected", [
    ("90d", datetime.timedelta(days=90)), ("90", datetime.timedelta(days=90)),
    ("12h", datetime.timedelta(hours=12)), ("2W", datetime.timedelta(weeks=2)),
])
def test_ages(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize("text", ["", "0d", "-1d", "90m", "d", "1.5d", "9999999d", "90 days"])
def test_bad_ages_are_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_age(text)


def test_bad_arguments_exit_2(app, audit):
    with pytest.raises(SystemExit) as exc:
        audit("prune", "--older-than", "soon")
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        audit("prune")  # --older-than is required
    assert exc.value.code == 2
    assert vexpenses_core.cli.main(["audit"]) == 2


def test_commands_refuse_a_config_without_the_plugin(app, audit, monkeypatch):
    monkeypatch.setenv("VEXPENSES_PLUGINS", "")
    code, out = audit("verify")
    assert code == 2 and "plugin 'audit_log' is not enabled" in out


def test_the_console_script_exits_1_on_tampering(app, tmp_path):
    write_records(app.app.registry, 2)
    with app.app.registry.dbengine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log_entries WHERE id = 1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEXPENSES_")}
    env.update(command_env(app.app.registry.settings))
    result = subprocess.run([VEXPENSES, "audit", "verify", str(write_ini(tmp_path))],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("audit log BROKEN: row 1 was removed")
