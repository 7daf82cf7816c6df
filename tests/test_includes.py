"""Every includeme registers what it promises, and only that."""

import fakeredis
import pytest
from pyramid import testing
from pyramid.interfaces import ISecurityPolicy
from pyramid.scripting import prepare

from vexpenses_core.accounts.interfaces import IPasswordHasher, IRateLimiter
from vexpenses_core.settings import normalize_settings


@pytest.fixture
def config(tmp_path, environ_clean):
    settings = normalize_settings({"vexpenses.database_url": f"sqlite:///{tmp_path}/i.db"})
    with testing.testConfig(settings=settings) as config:
        yield config


def request_for(config):
    return prepare(registry=config.registry)["request"]


def test_plugins_includeme(config):
    config.include("vexpenses_core.plugins")
    config.commit()
    assert config.registry.pm.has_plugin("core")
    assert request_for(config).pm is config.registry.pm


def test_db_includeme(config):
    config.include("vexpenses_core.db")
    config.commit()
    request = request_for(config)
    assert request.tm.explicit  # nothing is written outside an explicit transaction
    assert request.dbsession.bind is config.registry.dbengine
    config.registry.dbengine.dispose()


def test_db_session_from_environ_wins(config):
    config.include("vexpenses_core.db")
    config.commit()
    request = request_for(config)
    sentinel = object()
    request.environ["app.dbsession"] = sentinel
    assert request.dbsession is sentinel


def test_redis_client_includeme_falls_back_to_memory(config):
    config.include("vexpenses_core.redis_client")
    config.commit()
    client = request_for(config).redis
    assert isinstance(client, fakeredis.FakeRedis)
    client.set("k", "v")
    assert client.get("k") == b"v"


def test_tasks_includeme(config):
    config.include("vexpenses_core.tasks")
    config.commit()
    assert config.registry.queue.in_process
    assert callable(request_for(config).enqueue)


def test_security_includeme(config):
    config.include("vexpenses_core.security")
    config.commit()
    assert config.registry.queryUtility(ISecurityPolicy) is not None


def test_api_includeme(config):
    config.include("vexpenses_core.api")
    config.commit()
    request = request_for(config)
    request.environ["vexpenses.request_id"] = "r-1"
    assert request.request_id == "r-1"


@pytest.mark.parametrize("module,route", [
    ("vexpenses_core.openapi", "vexpenses.openapi"),
    ("vexpenses_core.introspection", "vexpenses.plugins"),
])
def test_route_includemes(config, module, route):
    config.include(module)
    config.commit()
    from pyramid.interfaces import IRoutesMapper

    assert config.registry.getUtility(IRoutesMapper).get_route(route) is not None


def test_vexpenses_includeme_hook_lets_plugins_add_routes(testapp):
    """The hello plugin's vexpenses_includeme added its routes."""
    from pyramid.interfaces import IRoutesMapper

    mapper = testapp.app.registry.getUtility(IRoutesMapper)
    assert mapper.get_route("hello.greetings") is not None


def test_vexpenses_tasks_hook_registers_plugin_tasks(testapp):
    assert testapp.app.registry.queue.broker.find_task("hello.greet") is not None


def test_vexpenses_migration_locations_hook_adds_plugin_branch(testapp):
    """The hook vexpenses_migration_locations puts the plugin's folder in Alembic's path."""
    from vexpenses_core.migrate import alembic_config

    locations = alembic_config(testapp.app.registry).get_main_option("version_locations")
    assert "vexpenses_hello" in locations


def test_vexpenses_app_created_hook_runs_once_per_app(standin_app):
    """The stand-in plugin's vexpenses_app_created ran when the app was made."""
    assert standin_app.app.registry.standin_ready is True


def test_accounts_includeme(config):
    config.include("vexpenses_core.api")  # the views' body limits
    config.include("vexpenses_core.redis_client")
    config.include("vexpenses_core.accounts")
    config.commit()
    from pyramid.interfaces import IRoutesMapper

    registry = config.registry
    hasher = config.find_service_factory(IPasswordHasher)(None, None)
    assert hasher.hash("x" * 8).startswith("$argon2id$")
    assert config.find_service_factory(IRateLimiter)(None, None).enabled
    mapper = registry.getUtility(IRoutesMapper)
    for name in ("accounts.register", "accounts.me", "accounts.list", "accounts.reset_page"):
        assert mapper.get_route(name) is not None


def test_accounts_includeme_twice_keeps_one_hasher(config):
    config.include("vexpenses_core.api")  # the views' body limits
    config.include("vexpenses_core.redis_client")
    config.include("vexpenses_core.accounts")
    config.include("vexpenses_core.accounts")
    config.commit()
    # One per process: every lookup, in every request, gets the same object.
    hasher = config.find_service_factory(IPasswordHasher)(None, None)
    assert config.find_service_factory(IPasswordHasher)(None, None) is hasher
