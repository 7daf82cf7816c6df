"""The documentation stays honest: every hook and setting is documented, every
hook is tested, and the site builds without a warning."""

import ast
import functools
import importlib.util
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


def load_reference():
    """The MkDocs hook that generates the hook reference (docs/ is no package)."""
    path = DOCS / "_hooks" / "hook_reference.py"
    spec = importlib.util.spec_from_file_location("hook_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference = load_reference()
# Every hookspec of the tree, the core's and the plugins', read from source.
SPECS = reference.read_specs()
CORE_SPECS = {
    name: fn
    for name, fn in vars(hookspecs).items()
    if name.startswith("vexpenses_") and callable(fn)
}
SETTINGS = sorted(set(ENV_SETTINGS) | set(DEFAULTS))
# Where hook tests live: the core's, the plugins' and the example plugin's.
TEST_DIRS = [ROOT / "tests", *sorted(ROOT.glob("plugins/*/tests")),
             ROOT / "examples" / "hello" / "tests"]


@functools.cache
def rendered_pages():
    """``{page: Markdown}`` for every page, with the hook reference generated."""
    return {
        page.relative_to(DOCS).as_posix(): reference.expand(page.read_text(), SPECS)
        for page in sorted(DOCS.rglob("*.md"))
    }


def hook_sections(page="hooks.md"):
    """``{hook name: section text}`` for every ``vexpenses_*`` heading of a page
    (``##`` in hooks.md, ``###`` in a plugin's page)."""
    parts = re.split(r"^###? (.+?)[ \t]*$", rendered_pages()[page], flags=re.MULTILINE)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    return {name: body for name, body in sections.items() if name.startswith("vexpenses_")}


def marked_hooks():
    """``[(page, heading above the marker, hook)]`` for every hookspec marker."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        heading = None
        for line in page.read_text().splitlines():
            if line.startswith("#"):
                heading = line.lstrip("#").strip()
            elif match := reference.MARKER.match(line):
                found.append((page.name, heading, match[1]))
    return found


def test_hookspecs_are_found():
    assert "vexpenses_includeme" in CORE_SPECS
    assert {"vexpenses_includeme", "vexpenses_import_finished", "vexpenses_mail_failed",
            "vexpenses_audit_pruned"} <= set(SPECS)


def test_specs_read_from_source_are_the_core_hookspecs():
    core = {name: spec for name, spec in SPECS.items() if spec.path.name == "hookspecs.py"
            and spec.path.parent.name == "vexpenses_core"}
    assert sorted(core) == sorted(CORE_SPECS)
    for name, fn in CORE_SPECS.items():
        assert core[name].params == list(inspect.signature(fn).parameters), name
        assert core[name].firstresult == fn.vexpenses_spec["firstresult"], name
        assert core[name].doc == inspect.getdoc(fn), name


def test_every_hook_has_a_section_and_every_section_a_hook():
    documented = set(hook_sections())
    assert sorted(set(CORE_SPECS) - documented) == [], "hooks missing from docs/hooks.md"
    assert sorted(documented - set(CORE_SPECS)) == [], "docs/hooks.md documents unknown hooks"


def page_of(spec):
    """The page that documents a hook: hooks.md for the core's, the plugin's own."""
    if spec.path.parent.name == "vexpenses_core":
        return "hooks.md"
    return f"{spec.path.parent.parent.name}.md"


def test_every_hookspec_is_generated_once_under_its_heading():
    marked = marked_hooks()
    assert sorted(hook for _, _, hook in marked) == sorted(SPECS)
    for page, heading, hook in marked:
        assert heading == hook, f"{page}: the marker of {hook} is under {heading!r}"
        assert page == page_of(SPECS[hook]), f"{hook} belongs in docs/{page_of(SPECS[hook])}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_docstring_is_the_whole_contract(name):
    """Every parameter is described, and so is when the hook runs."""
    spec = SPECS[name]
    for param in spec.params:
        assert re.search(rf"^:param {param}: \S", spec.doc, re.MULTILINE), (
            f"{name}: parameter {param!r} has no :param: in its docstring")
    assert re.search(r"^:runs: \S", spec.doc, re.MULTILINE), f"{name}: no :runs: field"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_section_matches_its_spec(name):
    page = page_of(SPECS[name])
    section = hook_sections(page).get(name)
    if section is None:
        pytest.fail(f"docs/{page} has no section for {name}")
    for param in SPECS[name].params:
        assert f"`{param}`" in section, f"{name}: parameter {param!r} is not documented"
    firstresult = SPECS[name].firstresult
    assert f"**firstresult:** {'yes' if firstresult else 'no'}" in section


def test_reference_is_generated_from_the_spec(tmp_path):
    """A marker becomes the hookspec's signature, fields and prose."""
    path = tmp_path / "hookspecs.py"
    path.write_text('''
@hookspec(firstresult=True)
def vexpenses_thing_chosen(request, things):
    """Choose a thing, or ``None``.

    :param request: the current request.
    :param things: the :class:`~pkg.things.Thing` list,
        never empty.
    :return: the chosen thing.
    :runs: in a request.

    The first non-``None`` answer wins.
    """


def vexpenses_not_a_hook():
    """No decorator: not a hookspec."""
''')
    specs = reference.read_specs([path])
    assert list(specs) == ["vexpenses_thing_chosen"]
    seen = []
    text = reference.expand("## x\n\n<!-- hookspec: vexpenses_thing_chosen -->\n", specs, seen)
    assert seen == ["vexpenses_thing_chosen"]
    assert "vexpenses_thing_chosen(request, things)" in text
    assert "    - `things`: the `Thing` list, never empty." in text
    assert "- **Returns:** the chosen thing." in text
    assert "- **firstresult:** yes" in text
    assert "- **Runs:** in a request." in text
    assert text.rstrip().endswith("The first non-`None` answer wins.")
    with pytest.raises(ValueError, match="vexpenses_nothing"):
        reference.expand("<!-- hookspec: vexpenses_nothing -->", specs)


@functools.cache
def sources_of_tests():
    """``{path: text}`` of every Python file in the test folders but this one."""
    return {
        path: path.read_text()
        for folder in TEST_DIRS
        if folder.is_dir()
        for path in sorted(folder.rglob("*.py"))
        if path.resolve() != pathlib.Path(__file__).resolve()
    }


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_hook_is_named_in_a_test(name):
    """A hook without a test fails (datasette's rule)."""
    assert re.search(rf"\b{name}\b", "\n".join(sources_of_tests().values())), (
        f"no test under {', '.join(str(d.relative_to(ROOT)) for d in TEST_DIRS)} mentions {name}"
    )


def names_of_tests():
    """The name of every test function (and test method) in the test folders."""
    return {
        node.name
        for path, text in sources_of_tests().items()
        if path.name.startswith("test_")
        for node in ast.walk(ast.parse(text, str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def hooks_without_tests(hooks, test_names):
    """The hooks no test is named after: ``test_hook_<name without vexpenses_>``
    or ``test_<hook name>``, alone or followed by ``_`` and more words."""

    def named_after(hook, test):
        short = hook.removeprefix("vexpenses_")
        return any(test == prefix or test.startswith(prefix + "_")
                   for prefix in (f"test_hook_{short}", f"test_{hook}"))

    return sorted(hook for hook in hooks if not any(named_after(hook, t) for t in test_names))


def test_hooks_without_tests_are_found():
    hooks = ["vexpenses_user_registered", "vexpenses_tasks", "vexpenses_mail_failed"]
    tests = ["test_hook_user_registered_queues_mail", "test_vexpenses_tasks",
             "test_mail_failed", "test_hook_tasksx"]
    assert hooks_without_tests(hooks, tests) == ["vexpenses_mail_failed"]
    assert hooks_without_tests(hooks, ["test_hook_mail_failed"]) == [
        "vexpenses_tasks", "vexpenses_user_registered"]


def test_every_hook_has_a_test_named_after_it():
    """datasette's test_plugin_hooks_have_tests: the reference's hooks, each with a test."""
    assert hooks_without_tests(SPECS, names_of_tests()) == []


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
