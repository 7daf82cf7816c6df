import pytest


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return "hello"
