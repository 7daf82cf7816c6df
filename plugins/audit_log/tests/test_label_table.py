"""docs/audit_log.md lists every built-in label as the plugin has it."""

import pathlib
import re

from vexpenses_audit_log.labels import BUILTIN_LABELS

DOCS = pathlib.Path(__file__).resolve().parents[3] / "docs" / "audit_log.md"


def test_the_label_table_is_the_built_in_one():
    rows = dict(re.findall(r"^\| `(vexpenses_\w+)` \| ([^|]+?) \|$", DOCS.read_text(), re.M))
    missing = {hook: label for hook, label in BUILTIN_LABELS.items() if rows.get(hook) != label}
    assert not missing, f"docs/audit_log.md's label table lacks or misspells {missing}"
