import pathlib

import pytest

STANDIN = pathlib.Path(__file__).parent / "standin"


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return "audit_log"


@pytest.fixture
def standin(monkeypatch):
    """The stand-in third-party plugin (tests/standin), installed for this test only."""
    monkeypatch.syspath_prepend(str(STANDIN))
    return STANDIN


@pytest.fixture
def make_app(make_testapp):
    """make_testapp whose audit pipelines are closed before the tables are emptied,
    so that no record of one test is written during the next."""
    made = []

    def make(**overrides):
        app = make_testapp(**overrides)
        made.append(app)
        return app

    yield make
    for app in made:
        app.app.registry.audit_log.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def standin_app(make_app, standin):
    return make_app(**{"vexpenses.plugins": "audit_log audit_standin"})
