import pytest

from vexpenses_core.testing import *  # noqa: F403


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return "csv_import"
