"""The core's swappable pieces are services found by interface; a host app replaces one
in one line (the plugins' pieces: plugins/csv_import/tests/test_host_storage.py)."""

import pytest
import webtest
from pyramid.config import Configurator
from pyramid.scripting import prepare

from vexpenses_core import make_wsgi_app
from vexpenses_core.accounts.interfaces import IPasswordHasher, IRateLimiter
from vexpenses_core.accounts.passwords import PasswordHasher
from vexpenses_core.accounts.ratelimit import RateLimited
from vexpenses_core.testing import base_settings, clean_tables


def test_the_core_pieces_are_found_by_interface(testapp):
    """One object per process: every lookup gets the same one."""
    env = prepare(registry=testapp.app.registry)
    try:
        for iface in (IPasswordHasher, IRateLimiter):
            service = env["request"].find_service(iface)
            assert iface.providedBy(service), iface
            assert env["request"].find_service(iface) is service
    finally:
        env["closer"]()


class CountingHasher(PasswordHasher):
    def __init__(self):
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.hashed = 0

    def hash(self, password):
        self.hashed += 1
        return super().hash(password)


class Closed:
    """A limiter that refuses everything: a host's own policy."""

    def hit(self, name, key):
        raise RateLimited(60)

    def check_login_delay(self, account):
        pass

    def login_failed(self, account):
        pass

    def login_succeeded(self, account):
        pass


@pytest.fixture
def host(database_url, environ_clean):
    made = []

    def build(iface, service):
        with Configurator(settings=base_settings(database_url)) as config:
            config.include("vexpenses_core")
            config.register_service_factory(lambda context, request: service, iface)
        made.append(config.registry)
        return webtest.TestApp(make_wsgi_app(config), extra_environ={"REMOTE_ADDR": "127.0.0.1"})

    yield build
    for registry in made:
        registry.queue.close()
        clean_tables(registry.dbengine)
        registry.dbengine.dispose()


BODY = {"name": "Ana Souza", "email": "ana@example.com", "password": "secret-password",
        "password_confirmation": "secret-password", "birth_date": "1990-01-01"}


def test_a_host_replaces_the_hasher(host):
    hasher = CountingHasher()
    app = host(IPasswordHasher, hasher)
    app.post_json("/api/v1/user/register", BODY, status=201)
    assert hasher.hashed == 1
    app.post_json("/api/v1/user/authenticate",
                  {"email": BODY["email"], "password": BODY["password"]}, status=201)


def test_a_host_replaces_the_limiter(host):
    app = host(IRateLimiter, Closed())
    res = app.post_json("/api/v1/user/authenticate",
                        {"email": "ana@example.com", "password": "whatever1"}, status=429)
    assert res.headers["Retry-After"] == "60"
