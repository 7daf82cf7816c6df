"""MkDocs hook: each hook's reference is generated from its hookspec.

A page puts ``<!-- hookspec: vexpenses_user_registered -->`` under the hook's
heading, and the build replaces it with the hook's signature, parameters,
return value, firstresult and when it runs, read from the hookspec. The
docstring is the contract; the page adds prose and examples around it.

The hookspecs are read from source with ``ast``, not imported: the docs build
needs none of the distributions installed and documents the tree as it is.
A marker naming an unknown hook, or a hookspec without exactly one marker in
the site, fails the build.

Docstrings use reST fields, as pluggy and pytest do::

    :param request: the current request.
    :return: the plugin's tasks.      (none: "nothing, the value is ignored")
    :runs: in a request, inside its transaction.

``code``, and roles such as :class:`~pkg.Name`, become Markdown code.
"""

import ast
import dataclasses
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- hookspec: (\S+) -->[ \t]*$", re.MULTILINE)
FIELD = re.compile(r"^:(param (\w+)|return|runs):\s*(.*)$")
ROLE = re.compile(r":[a-z]+:`(~?)([\w.]+)`")
NO_RETURN = "nothing. The return value is ignored."


def spec_files(root=ROOT):
    """The core's hookspecs module, then every plugin's."""
    return [root / "vexpenses_core" / "hookspecs.py",
            *sorted(root.glob("plugins/*/vexpenses_*/hookspecs.py"))]


@dataclasses.dataclass
class Spec:
    name: str
    params: list
    firstresult: bool
    doc: str
    path: pathlib.Path


def _hookspec_options(node):
    """The options of a ``@hookspec`` decorator, or None if it has none."""
    for deco in node.decorator_list:
        call = deco if isinstance(deco, ast.Call) else None
        target = call.func if call else deco
        if isinstance(target, ast.Name) and target.id == "hookspec":
            return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords} if call else {}
    return None


def read_specs(paths=None):
    """``{hook name: Spec}`` for every ``@hookspec`` function in ``paths``."""
    specs = {}
    for path in paths or spec_files():
        for node in ast.parse(path.read_text(), str(path)).body:
            options = _hookspec_options(node) if isinstance(node, ast.FunctionDef) else None
            if options is None:
                continue
            if node.name in specs:
                raise ValueError(f"{node.name} is specified twice: {specs[node.name].path}")
            specs[node.name] = Spec(
                name=node.name,
                params=[arg.arg for arg in node.args.args],
                firstresult=bool(options.get("firstresult")),
                doc=ast.get_docstring(node) or "",
                path=path,
            )
    return specs


def inline(text):
    """reST inline markup to Markdown: roles and ``literals`` become code."""
    text = ROLE.sub(lambda m: f"`{m[2].rsplit('.', 1)[-1] if m[1] else m[2]}`", text)
    return text.replace("``", "`")


def parse_doc(doc):
    """``(text before the fields, {field: text}, text after them)``.

    A field runs on over its indented lines; a blank line ends the fields.
    """
    before, after, fields = [], [], {}
    current = None
    for line in doc.splitlines():
        match = FIELD.match(line)
        if match and not after:
            current = match[2] or match[1]
            fields[current] = match[3]
        elif current and line.startswith(" "):
            fields[current] += " " + line.strip()
        elif fields:
            current = None
            after.append(line)
        else:
            before.append(line)
    return "\n".join(before).strip(), fields, "\n".join(after).strip()


def render(spec):
    """The Markdown reference of one hook."""
    before, fields, after = parse_doc(spec.doc)
    # The signature is no snippet to copy: tests/test_doc_snippets.py reads the mark.
    out = ["<!-- not run: the signature, from the hookspec -->", "```python",
           f"{spec.name}({', '.join(spec.params)})", "```", ""]
    if before:
        out += [inline(before), ""]
    if spec.params:
        out.append("- **Parameters:**")
        out += [f"    - `{p}`: {inline(fields.get(p, ''))}" for p in spec.params]
    else:
        out.append("- **Parameters:** none.")
    out.append(f"- **Returns:** {inline(fields.get('return', NO_RETURN))}")
    out.append(f"- **firstresult:** {'yes' if spec.firstresult else 'no'}")
    if "runs" in fields:
        out.append(f"- **Runs:** {inline(fields['runs'])}")
    if after:
        out += ["", inline(after)]
    return "\n".join(out)


def expand(markdown, specs, seen=None):
    """Replace every marker of ``markdown``; record the hooks in ``seen``."""

    def one(match):
        name = match[1]
        if name not in specs:
            raise ValueError(f"<!-- hookspec: {name} --> names no hookspec")
        if seen is not None:
            seen.append(name)
        return render(specs[name])

    return MARKER.sub(one, markdown)


# -- MkDocs events ------------------------------------------------------------

_specs = {}
_seen = []


def on_pre_build(config):
    _specs.clear()
    _specs.update(read_specs())
    _seen.clear()


def on_page_markdown(markdown, page, config, files):
    from mkdocs.exceptions import PluginError

    try:
        return expand(markdown, _specs, _seen)
    except ValueError as error:
        raise PluginError(f"{page.file.src_path}: {error}") from None


def on_post_build(config):
    from mkdocs.exceptions import PluginError

    problems = [f"{name} is documented {_seen.count(name)} times"
                for name in sorted(_specs) if _seen.count(name) != 1]
    if problems:
        raise PluginError("; ".join(problems) + " (one <!-- hookspec: NAME --> each)")
