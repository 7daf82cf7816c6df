import pytest

from vexpenses_core.testing import *  # noqa: F403


@pytest.fixture(scope="session")
def vexpenses_plugins():
    # The core's tests use the example plugin to prove the plugin machinery.
    return "hello"
