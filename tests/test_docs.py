"""The documentation stays honest: every hook and setting is documented, every
hook is tested, and the site builds without a warning."""

import functools
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

from vexpenses_core import hookspecs
from vexpenses_core.settings import DEFAULTS, ENV_SETTINGS

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOK_SPECS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if name.startswith("vexpenses_") and callable(fn)
}
SETTINGS = sorted(set(ENV_SETTINGS) | set(DEFAULTS))
# Where hook tests may live: the core's tests and the example plugin's.
TEST_DIRS = [ROOT / "tests", ROOT / "examples" / "hello" / "tests"]


def hook_sections():
    """``{hook name: section text}`` for every ``## vexpenses_*`` heading of hooks.md."""
    text = (DOCS / "hooks.md").read_text()
    parts = re.split(r"^## (.+?)[ \t]*$", text, flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    return {name: body for name, body in sections.items() if name.startswith("vexpenses_")}


def test_hookspecs_are_found():
    assert "vexpenses_includeme" in HOOK_SPECS


def test_every_hook_has_a_section_and_every_section_a_hook():
    documented = set(hook_sections())
    assert sorted(set(HOOK_SPECS) - documented) == [], "hooks missing from docs/hooks.md"
    assert sorted(documented - set(HOOK_SPECS)) == [], "docs/hooks.md documents unknown hooks"


@pytest.mark.parametrize("name", sorted(HOOK_SPECS))
def test_hook_section_matches_its_spec(name):
    section = hook_sections().get(name)
    if section is None:
        pytest.fail(f"docs/hooks.md has no section '## {name}'")
    for param in inspect.signature(HOOK_SPECS[name]).parameters:
        assert f"`{param}`" in section, f"{name}: parameter {param!r} is not documented"
    firstresult = HOOK_SPECS[name].vexpenses_spec["firstresult"]
    assert f"**firstresult:** {'yes' if firstresult else 'no'}" in section


@functools.cache
def other_test_sources():
    """The text of every Python file in the test folders but this one."""
    files = [
        path
        for folder in TEST_DIRS
        if folder.is_dir()
        for path in sorted(folder.rglob("*.py"))
        if path.resolve() != pathlib.Path(__file__).resolve()
    ]
    return "\n".join(path.read_text() for path in files)


@pytest.mark.parametrize("name", sorted(HOOK_SPECS))
def test_every_hook_is_named_in_a_test(name):
    """A hook without a test fails (datasette's rule)."""
    assert re.search(rf"\b{name}\b", other_test_sources()), (
        f"no test under tests/ or examples/hello/tests/ mentions {name}"
    )


def configuration_rows():
    """``{setting: (env var cell, default cell)}`` from the settings table."""
    rows = {}
    for line in (DOCS / "configuration.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"`vexpenses\.[\w.]+`", cells[0]):
            rows[cells[0].strip("`")] = (cells[1], cells[2])
    return rows


def test_every_setting_and_env_var_is_in_configuration():
    text = (DOCS / "configuration.md").read_text()
    for name in SETTINGS:
        assert f"`{name}`" in text, f"{name} is not in docs/configuration.md"
    for var in ENV_SETTINGS.values():
        assert f"`{var}`" in text, f"{var} is not in docs/configuration.md"


def test_configuration_table_matches_settings():
    rows = configuration_rows()
    assert sorted(rows) == SETTINGS
    for name, (var, default) in rows.items():
        assert var == f"`{ENV_SETTINGS[name]}`", name
        expected = f"`{DEFAULTS[name]}`" if DEFAULTS[name] else "*(empty)*"
        assert default == expected, name


def test_every_page_is_in_the_nav():
    config = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert page.relative_to(DOCS).as_posix() in config, f"{page.name} is not in the nav"


def test_mkdocs_build_is_strict_clean(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    assert (tmp_path / "hooks" / "index.html").exists()
