"""Test apps through WebTest, on the current backend, with the plugins a conftest names."""

import os

import pytest
import webtest

from vexpenses_core import make_app

from .databases import clean_tables
from .settings import base_settings


@pytest.fixture(scope="session")
def vexpenses_plugins():
    """The plugins enabled in tests (space-separated); override in a conftest."""
    return ""


@pytest.fixture
def make_testapp(database_url, vexpenses_plugins, environ_clean):
    """Build TestApps on the current backend; settings may be overridden."""
    made = []

    def make(**overrides):
        wsgi = make_app(base_settings(database_url, vexpenses_plugins, **overrides))
        made.append(wsgi.registry)
        return webtest.TestApp(wsgi, extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    yield make
    for registry in made:
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()
        if registry.settings["vexpenses.redis_url"]:  # leave a shared Redis as we found it
            prefix = registry.settings["vexpenses.redis_prefix"]
            for key in registry.redis.scan_iter(match=prefix + "*", count=1000):
                registry.redis.delete(key)
        registry.redis.close()


@pytest.fixture
def testapp(make_testapp):
    return make_testapp()


@pytest.fixture
def environ_clean(monkeypatch):
    """No VEXPENSES_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("VEXPENSES_") and not name.startswith("VEXPENSES_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def dbsession(testapp):
    session = testapp.app.registry.dbsession_factory()
    yield session
    session.close()
