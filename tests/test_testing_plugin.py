"""The fixtures reach a plugin's tests through the ``pytest11`` entry point alone."""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_plain_pytest_loads_the_plugin_in_a_plugins_own_folder():
    """``pytest`` (not ``python -m pytest``), run where a plugin author runs it:
    the entry point is loaded before any conftest, and must not trip pytest's
    assert rewriting."""
    pytest_script = pathlib.Path(sys.executable).with_name("pytest")
    result = subprocess.run(
        [str(pytest_script), "--collect-only", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=ROOT / "examples" / "hello", capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test_" in result.stdout
