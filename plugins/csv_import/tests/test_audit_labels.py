"""csv_import names its own hooks in the audit log, and needs no audit_log for it."""

import vexpenses_csv_import

from vexpenses_core.plugins import build_plugin_manager


def test_hook_audit_labels_names_the_import_events():
    labels = vexpenses_csv_import.vexpenses_audit_labels()
    assert labels["vexpenses_import_uploaded"] == "Upload file"
    assert labels["vexpenses_import_viewed"] == "Get import progress"
    assert set(labels) == {name for name in dir(vexpenses_csv_import.hookspecs)
                           if name.startswith("vexpenses_")}


def test_the_labels_hookimpl_needs_no_audit_log():
    pm = build_plugin_manager(["csv_import"])  # check_pending passes: an optional hook
    assert not pm.hook.vexpenses_audit_labels.has_spec()
