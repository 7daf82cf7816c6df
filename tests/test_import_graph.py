"""Dependencies point one way: no module of any distribution imports itself back.

The graph holds every module of the core, the plugins and the examples
(tests and migrations left out), and every import in it, those inside
functions too: an import deferred into a function hides a cycle, it does
not remove it.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIPPED_DIRS = {"tests", "migrations", "__pycache__"}


def distribution_packages(root=ROOT):
    """The top-level package directories of every distribution in the repository."""
    packages = [root / "vexpenses_core"]
    for parent in ("plugins", "examples"):
        for dist in sorted((root / parent).glob("*")):
            packages += sorted(path for path in dist.glob("vexpenses_*") if path.is_dir())
    return packages


def module_files(package_dir):
    """``{module name: path}`` for a package directory, tests and migrations left out."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir.parent)
        if SKIPPED_DIRS & set(relative.parts[:-1]):
            continue
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def imported_names(module, path):
    """The dotted names ``module`` (at ``path``) imports, relative imports resolved."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                origin = ".".join(base)
            else:
                origin = node.module
            for alias in node.names:  # a module of origin's, or a name in origin
                yield f"{origin}.{alias.name}"


def import_graph(package_dirs):
    """``{module: set of modules it imports}``, within the given packages only."""
    files = {}
    for package_dir in package_dirs:
        files.update(module_files(package_dir))
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(module, path):
            # The deepest of our modules the name reaches: `a.b.c` is module a.b
            # when c is a function or class in it.
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycles(graph):
    """Each cycle as a list of modules ``[a, b, ..., a]``, one per strongly connected part."""
    index, low, stack, on_stack, parts = {}, {}, [], set(), []

    def connect(node):  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            part = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                part.add(member)
                if member == node:
                    break
            if len(part) > 1:
                parts.append(part)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, part) for part in parts]


def _cycle_in(graph, part):
    """One concrete cycle through the strongly connected ``part``."""
    start = min(part)
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to start
        node = queue.pop(0)
        for target in sorted(graph[node] & part):
            if target == start:
                return paths[node] + [start]
            if target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    raise AssertionError(f"no cycle in {part}")  # pragma: no cover


def test_no_distribution_has_an_import_cycle():
    cycles = find_cycles(import_graph(distribution_packages()))
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_every_distribution():
    graph = import_graph(distribution_packages())
    for module in ("vexpenses_core.tasks", "vexpenses_csv_import.services",
                   "vexpenses_mailer.tasks", "vexpenses_audit_log.chain", "vexpenses_hello"):
        assert module in graph
    assert not any(".migrations" in module or ".tests" in module for module in graph)


def test_a_cycle_is_found_and_named(tmp_path):
    """A cycle through a relative import, an import inside a function and a package."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "migrations").mkdir()
    (package / "__init__.py").write_text("from .sub import helper\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "helper.py").write_text("def f():\n    from ..services import g\n")
    (package / "services.py").write_text("from pkg.sub import helper\nimport json\n")
    (package / "alone.py").write_text("from . import services\n")
    (package / "migrations" / "env.py").write_text("import pkg.alone\nimport pkg.migrations.env\n")

    graph = import_graph([package])
    assert "pkg.migrations.env" not in graph
    assert graph["pkg"] == {"pkg.sub.helper"}
    assert graph["pkg.alone"] == {"pkg.services"}
    assert find_cycles(graph) == [["pkg.services", "pkg.sub.helper", "pkg.services"]]

    (package / "sub" / "helper.py").write_text("def f():\n    import json\n")
    assert find_cycles(import_graph([package])) == []
