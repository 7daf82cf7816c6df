"""docs/writing-a-plugin.md walks through examples/hello: every file it shows
is the file in the repository, word for word, and its pyproject builds."""

import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "writing-a-plugin.md"
HELLO = ROOT / "examples" / "hello"
# A file is shown as "`examples/hello/<path>`:" then a fenced block.
SHOWN = re.compile(r"^`examples/hello/([^`]+)`:\n\n```\w*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def shown_files():
    return {path: text for path, text in SHOWN.findall(GUIDE.read_text())}


# What building and testing leave beside the sources (pip wheel leaves build/).
BUILD_OUTPUT = {"build", "dist", "__pycache__", ".pytest_cache"}


def plugin_files():
    return sorted(
        path.relative_to(HELLO).as_posix()
        for path in HELLO.rglob("*")
        if path.is_file() and path.suffix in (".py", ".toml")
        and not BUILD_OUTPUT.intersection(path.relative_to(HELLO).parts)
        and ".egg-info" not in str(path)
    )


def test_the_guide_shows_every_file_of_the_example():
    assert sorted(shown_files()) == plugin_files()


@pytest.mark.parametrize("path", plugin_files())
def test_each_file_shown_is_the_file_in_the_repository(path):
    assert shown_files().get(path) == (HELLO / path).read_text(), (
        f"docs/writing-a-plugin.md shows examples/hello/{path} differently"
    )


def test_the_example_imports_only_the_public_api():
    import vexpenses_core

    checked = 0
    for path in (HELLO / name for name in plugin_files() if name.endswith(".py")):
        for name in re.findall(r"^from vexpenses_core(\S*) import (.+)$", path.read_text(),
                               re.MULTILINE):
            module, names = name
            if "tests" in path.parts and module == ".testing":
                continue  # the test helpers
            checked += 1
            assert module == "", f"{path.name} imports from vexpenses_core{module}"
            for imported in names.split(", "):
                assert imported in vexpenses_core.__all__, f"{path.name}: {imported}"
    assert checked, "no import of vexpenses_core found: the pattern no longer matches"


def test_the_pyproject_shown_builds_a_distribution_with_the_migrations(tmp_path):
    """The pyproject the guide shows, with the package beside it, builds (no network)."""
    source = tmp_path / "hello"
    shutil.copytree(HELLO / "vexpenses_hello", source / "vexpenses_hello",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (source / "pyproject.toml").write_text(shown_files()["pyproject.toml"])
    build = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-c", build, str(tmp_path / "dist")],
        cwd=source, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    [archive] = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(archive) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        [entry_points] = [n for n in sdist.getnames() if n.endswith("entry_points.txt")]
        declared = sdist.extractfile(entry_points).read().decode()
    assert archive.name == "vexpenses-example-hello-0.1.0.tar.gz"
    assert "vexpenses_hello/migrations/hello_0001_greetings.py" in names
    assert "[vexpenses.plugins]\nhello = vexpenses_hello" in declared
