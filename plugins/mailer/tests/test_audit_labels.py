"""The mailer names its own hook in the audit log, and needs no audit_log for it."""

import vexpenses_mailer

from vexpenses_core.plugins import build_plugin_manager


def test_hook_audit_labels_names_the_mail_failure():
    assert vexpenses_mailer.vexpenses_audit_labels() == {"vexpenses_mail_failed": "Mail failed"}


def test_the_labels_hookimpl_needs_no_audit_log():
    pm = build_plugin_manager(["mailer"])  # check_pending passes: an optional hook
    assert not pm.hook.vexpenses_audit_labels.has_spec()
