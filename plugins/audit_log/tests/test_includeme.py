"""The plugin's wiring: its hookimpls, settings, tables and a second include."""

import pathlib

import pytest
import sqlalchemy as sa
from pyramid.config import Configurator
from vexpenses_audit_log.config import SETTINGS, parse_settings
from vexpenses_audit_log.testing import bearer, settle, stored_rows

from vexpenses_core.settings import ConfigurationError
from vexpenses_core.testing import make_user


def test_tables_exist_and_the_plugin_is_listed(app):
    registry = app.app.registry
    tables = set(sa.inspect(registry.dbengine).get_table_names())
    assert {"audit_log_entries", "audit_log_details", "audit_log_erased",
            "audit_log_chain"} <= tables
    _, token = make_user(registry, email="root@example.com", is_admin=True)
    plugins = app.get("/api/v1/plugins", headers=bearer(token)).json["data"]
    [ours] = [p for p in plugins if p["name"] == "audit_log"]
    assert ours["project"] == "vexpenses-audit-log"
    # Recording needs no account hookimpls: it watches the plugin manager. It only
    # gives the user's rows to their data export, and erases their details.
    assert ours["hooks"] == ["vexpenses_add_commands", "vexpenses_addhooks",
                             "vexpenses_app_created", "vexpenses_check_settings",
                             "vexpenses_erase_user", "vexpenses_export_user",
                             "vexpenses_includeme",
                             "vexpenses_openapi"]


def test_including_twice_records_once(app):
    registry = app.app.registry
    pipeline = registry.audit_log
    config = Configurator(registry=registry)
    config.include("vexpenses_audit_log.recorder")
    assert registry.audit_log is pipeline
    _, token = make_user(registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    settle(app)
    assert len(stored_rows(app)) == 1


def test_disabled_means_no_route_and_no_recording(make_testapp):
    app = make_testapp(**{"vexpenses.plugins": ""})
    _, token = make_user(app.app.registry, email="ana@example.com")
    app.get("/api/v1/user/me", headers=bearer(token))
    app.get("/api/v1/log", headers=bearer(token), status=404)
    assert not hasattr(app.app.registry, "audit_log")


@pytest.mark.parametrize("name, value, message", [
    ("visibility", "everyone", "visibility must be own or all"),
    ("transport", "kafka", "transport must be auto, memory or redis"),
    ("transport", "redis", "no Redis is configured"),
    ("flush_seconds", "0", "flush_seconds must be a number"),
    ("batch_size", "many", "batch_size must be a number"),
    ("max_buffer", "-5", "max_buffer must be a number"),
    ("labels", "just a label", "each line must read 'hook_name = Label'"),
])
def test_bad_settings_are_refused(name, value, message):
    with pytest.raises(ConfigurationError, match=message):
        parse_settings({f"vexpenses.audit_log.{name}": value}, environ={})


def test_a_bad_setting_stops_start_up(make_testapp):
    with pytest.raises(ConfigurationError, match="visibility must be own or all"):
        make_testapp(**{"vexpenses.audit_log.visibility": "everyone"})


def test_settings_defaults_and_the_chain_key_variable():
    settings = parse_settings({"vexpenses.env": "production"}, environ={})
    assert (settings.visibility, settings.transport, settings.batch_size) == ("own", "memory", 500)
    assert settings.sigterm is True and settings.chain_key is None
    with_redis = parse_settings({"vexpenses.redis_url": "redis://x"}, environ={})
    assert with_redis.transport == "redis"
    ini = {"vexpenses.audit_log.chain_key": "from-ini"}
    assert parse_settings(ini, environ={}).chain_key == b"from-ini"
    env = {"VEXPENSES_AUDIT_LOG_CHAIN_KEY": "from-env"}
    assert parse_settings(ini, environ=env).chain_key == b"from-env"
    # set but empty wins too, as with the core's variables
    assert parse_settings(ini, environ={"VEXPENSES_AUDIT_LOG_CHAIN_KEY": ""}).chain_key is None
    labels = parse_settings({"vexpenses.audit_log.labels": "\n# note\na_b = A B\n"}, environ={})
    assert labels.labels == {"a_b": "A B"}


def test_every_setting_is_documented():
    doc = (pathlib.Path(__file__).resolve().parents[3] / "docs/audit_log.md").read_text()
    assert SETTINGS.undocumented(doc) == []
