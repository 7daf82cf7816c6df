import os
import pathlib
import sys

import pytest

# The stand-in plugin (tests/standin) holds the switches the core's tests need
# and the example plugin has no use for: a delay, a failure, run counters. It
# is installed for the whole run, and for the workers and commands it starts.
STANDIN = str(pathlib.Path(__file__).parent / "standin")
sys.path.insert(0, STANDIN)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [STANDIN, os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def vexpenses_plugins():
    # The core's tests use the example plugin to prove the plugin machinery.
    return "hello"


@pytest.fixture
def standin_app(make_testapp):
    """A test app with the stand-in plugin enabled beside hello."""
    return make_testapp(**{"vexpenses.plugins": "hello standin"})
