"""Start-up: settings from ini and environment, plugin enabling, clear failures."""

import importlib.metadata
import subprocess
import sys
import types

import pluggy
import pytest

from vexpenses_core import hookimpl, make_app
from vexpenses_core.plugins import build_plugin_manager, installed_plugins
from vexpenses_core.settings import ConfigurationError, environ_for, normalize_settings
from vexpenses_core.testing import write_ini


def test_unknown_plugin_fails_startup_listing_installed_ones(tmp_path, environ_clean):
    with pytest.raises(ConfigurationError) as info:
        make_app({"vexpenses.database_url": f"sqlite:///{tmp_path}/a.db",
                  "vexpenses.plugins": "hello csv_imprt"})
    message = str(info.value)
    assert "Unknown plugin(s) in vexpenses.plugins: csv_imprt" in message
    assert "Installed plugins:" in message and "hello" in message


def test_missing_production_secret_fails_startup(tmp_path, environ_clean):
    with pytest.raises(ConfigurationError, match="VEXPENSES_JWT_SECRET"):
        make_app({"vexpenses.env": "production",
                  "vexpenses.database_url": f"sqlite:///{tmp_path}/a.db"})


def test_weak_production_secret_fails_startup(environ_clean):
    with pytest.raises(ConfigurationError, match="too weak"):
        normalize_settings({"vexpenses.env": "production", "vexpenses.jwt_secret": "short"})


def test_pserve_style_startup_prints_clear_message(tmp_path, environ_clean):
    """Operators see the message, not a traceback hunt, when the app is loaded from an ini."""
    ini = write_ini(tmp_path)
    code = f"from pyramid.paster import get_app; get_app({str(ini)!r})"
    env = {"VEXPENSES_ENV": "production", "VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/p.db",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.startswith("vexpenses: configuration error: vexpenses.jwt_secret is "
                                    "not set")
    assert "Traceback" not in result.stderr


def test_environment_overrides_ini(environ_clean, monkeypatch):
    monkeypatch.setenv("VEXPENSES_PLUGINS", "")
    monkeypatch.setenv("VEXPENSES_BASE_URL", "https://api.example.com/")
    monkeypatch.setenv("VEXPENSES_REDIS_URL", "redis://cache:6379/1")
    settings = normalize_settings({"vexpenses.plugins": "hello",
                                   "vexpenses.base_url": "http://ini"})
    assert settings["vexpenses.plugins"] == []  # empty means none
    assert settings["vexpenses.base_url"] == "https://api.example.com"
    assert settings["vexpenses.tasks.broker"] == "redis"


@pytest.mark.parametrize("value", ["hello, other", "hello other", "hello\nother"])
def test_plugin_list_accepts_commas_spaces_and_lines(environ_clean, value):
    assert normalize_settings({"vexpenses.plugins": value})["vexpenses.plugins"] == [
        "hello", "other"]


INI_PLUGINS = {"vexpenses.plugins": "csv_import audit_log mailer"}


@pytest.mark.parametrize("variable,plugins", [
    ("+hello", ["csv_import", "audit_log", "mailer", "hello"]),
    ("-mailer", ["csv_import", "audit_log"]),
    ("+hello -audit_log, +other", ["csv_import", "mailer", "hello", "other"]),
    ("+mailer -nothing", ["csv_import", "audit_log", "mailer"]),
    ("hello", ["hello"]),  # a plain list replaces the ini file's, as it always did
    ("", []),
])
def test_plus_and_minus_change_the_ini_files_plugins(environ_clean, variable, plugins):
    settings = normalize_settings(INI_PLUGINS, environ={"VEXPENSES_PLUGINS": variable})
    assert settings["vexpenses.plugins"] == plugins
    # normalising again, with the variable still set, changes nothing
    again = normalize_settings(settings, environ={"VEXPENSES_PLUGINS": variable})
    assert again["vexpenses.plugins"] == plugins


@pytest.mark.parametrize("variable", ["csv_import +hello", "-mailer hello", "+ hello"])
def test_mixed_or_empty_plugin_changes_are_refused(environ_clean, variable):
    with pytest.raises(ConfigurationError, match="VEXPENSES_PLUGINS") as info:
        normalize_settings(INI_PLUGINS, environ={"VEXPENSES_PLUGINS": variable})
    assert "+name" in str(info.value)


def test_workers_get_the_plugins_that_plus_gave(environ_clean):
    """environ_for passes the resulting list, which replaces the ini file's in the worker."""
    settings = normalize_settings(INI_PLUGINS, environ={"VEXPENSES_PLUGINS": "+hello -mailer"})
    worker = normalize_settings(INI_PLUGINS, environ=environ_for(settings))
    assert worker["vexpenses.plugins"] == ["csv_import", "audit_log", "hello"]


def test_a_subprocess_given_environ_for_gets_the_same_settings(environ_clean):
    """What `vexpenses worker` subprocesses of tests and benchmarks are started with."""
    settings = normalize_settings({
        "vexpenses.env": "testing", "vexpenses.plugins": "csv_import mailer",
        "vexpenses.redis_url": "redis://127.0.0.1:6379/3", "vexpenses.auto_migrate": "true",
        "vexpenses.ratelimit.enabled": "false", "vexpenses.identity_cache_seconds": "0",
        "vexpenses.jwt_secret": "x" * 40, "vexpenses.worker.threads": "1"}, environ={})
    again = normalize_settings({}, environ=environ_for(settings))
    assert {name: again[name] for name in settings} == settings


def test_embedded_default_runs_jobs_in_process(environ_clean):
    settings = normalize_settings({})
    assert settings["vexpenses.tasks.broker"] == "inprocess"
    assert settings["vexpenses.jwt_secret"]  # a development secret, outside production


@pytest.mark.parametrize("name,value", [
    ("vexpenses.env", "staging"),
    ("vexpenses.max_body_bytes", "-1"),
    ("vexpenses.worker.threads", "many"),
    ("vexpenses.tasks.broker", "rabbit"),
])
def test_bad_settings_are_named(environ_clean, name, value):
    with pytest.raises(ConfigurationError, match=name.replace(".", r"\.")):
        normalize_settings({name: value})


def test_redis_broker_without_redis_url_is_refused(environ_clean):
    with pytest.raises(ConfigurationError, match="no Redis is configured"):
        normalize_settings({"vexpenses.tasks.broker": "redis"})


def test_example_plugin_is_discovered_through_entry_points():
    assert "hello" in installed_plugins()


def test_hookimpl_with_unknown_argument_is_a_configuration_error():
    plugin = types.ModuleType("bad_args")

    @hookimpl
    def vexpenses_includeme(config, colour):
        pass

    plugin.vexpenses_includeme = vexpenses_includeme
    ep = types.SimpleNamespace(load=lambda: plugin, dist=None)
    with pytest.raises(ConfigurationError, match="bad hookimpl"):
        build_plugin_manager(["bad"], installed={"bad": ep})


def test_misspelt_hookimpl_is_an_error():
    plugin = types.ModuleType("typo_plugin")

    @hookimpl
    def vexpenses_includme(config):  # missing "e"
        pass

    plugin.vexpenses_includme = vexpenses_includme
    ep = types.SimpleNamespace(load=lambda: plugin, dist=None)
    with pytest.raises(ConfigurationError, match="vexpenses_includme"):
        build_plugin_manager(["typo"], installed={"typo": ep})


def test_manager_is_built_per_call_not_shared():
    first = build_plugin_manager([])
    second = build_plugin_manager([])
    assert first is not second
    assert isinstance(first, pluggy.PluginManager)
    assert first.get_plugin("core") is not None


def test_manager_reachable_from_registry_and_request(testapp):
    registry = testapp.app.registry
    assert registry.pm.has_plugin("hello")
    from pyramid.scripting import prepare

    env = prepare(registry=registry)
    try:
        assert env["request"].pm is registry.pm
    finally:
        env["closer"]()


def test_including_twice_is_harmless(tmp_path, environ_clean):
    from pyramid.config import Configurator

    with Configurator(settings={"vexpenses.database_url": f"sqlite:///{tmp_path}/t.db"}) as config:
        config.include("vexpenses_core")
        pm = config.registry.pm
        config.include("vexpenses_core")
        assert config.registry.pm is pm
    config.make_wsgi_app()


def test_host_app_includes_vexpenses_beside_its_own_routes(tmp_path, environ_clean):
    import webtest
    from pyramid.config import Configurator

    from vexpenses_core import make_wsgi_app

    settings = {"vexpenses.database_url": f"sqlite:///{tmp_path}/host.db",
                "vexpenses.plugins": "hello standin", "vexpenses.auto_migrate": "true"}
    with Configurator(settings=settings) as config:
        config.add_route("home", "/")
        config.add_view(lambda request: {"app": "host"}, route_name="home", renderer="json")
        config.include("vexpenses_core")
    app = webtest.TestApp(make_wsgi_app(config))
    assert config.registry.standin_ready  # vexpenses_app_created fired
    assert app.get("/").json == {"app": "host"}
    assert app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    config.registry.queue.close()
    config.registry.dbengine.dispose()


def test_core_version_is_reported():
    assert importlib.metadata.version("vexpenses-core")


@pytest.mark.parametrize("settings,match", [
    ({"vexpenses.argon2.memory_cost": "8", "vexpenses.argon2.parallelism": "4"}, "memory_cost"),
    ({"vexpenses.ratelimit.login_ip": "3 per hour;5 per day"}, "login_ip"),
    ({"vexpenses.ratelimit.forgot_ip": "lots"}, "forgot_ip"),
    ({"vexpenses.jwt_algorithm": "none"}, "jwt_algorithm"),
    ({"vexpenses.jwt_algorithm": "RS256"}, "jwt_private_key_file"),
])
def test_bad_security_settings_are_named(environ_clean, settings, match):
    with pytest.raises(ConfigurationError, match=match):
        normalize_settings(settings)


def test_vexpenses_addhooks_lets_plugins_define_hooks_for_each_other():
    """One plugin adds a hookspec through vexpenses_addhooks; another implements it."""
    from vexpenses_core import hookspec

    specs = types.ModuleType("greeter_specs")

    @hookspec
    def vexpenses_greeted(name):
        """A greeting happened."""

    specs.vexpenses_greeted = vexpenses_greeted
    provider = types.ModuleType("provider")

    @hookimpl
    def vexpenses_addhooks(pm):
        pm.add_hookspecs(specs)

    provider.vexpenses_addhooks = vexpenses_addhooks
    heard = []
    listener = types.ModuleType("listener")

    @hookimpl(optionalhook=True)
    def vexpenses_greeted(name):  # noqa: F811 - the listener's impl of that spec
        heard.append(name)

    listener.vexpenses_greeted = vexpenses_greeted
    installed = {name: types.SimpleNamespace(load=lambda m=module: m, dist=None)
                 for name, module in (("provider", provider), ("listener", listener))}
    pm = build_plugin_manager(["listener", "provider"], installed=installed)
    pm.hook.vexpenses_greeted(name="Ana")
    assert heard == ["Ana"]
    # without the provider, the listener's optional hookimpl is not an error
    build_plugin_manager(["listener"], installed=installed)
