"""What a row says: the ``action`` label and the ``description`` of each hook call.

Labels come from, in rising order of precedence: the built-in table below
(the core's hooks and this plugin's), the ``vexpenses_audit_labels``
hookimpls of other plugins (each names its own hooks), and the
``vexpenses.audit_log.labels`` setting. A hook found in none of them gets a
label made from its name: ``vexpenses_greeting_sent`` -> "Greeting sent".
"""

BUILTIN_LABELS = {
    # the core's accounts events
    "vexpenses_user_registered": "User register",
    "vexpenses_user_logged_in": "User login",
    "vexpenses_login_failed": "User login failed",
    "vexpenses_user_logged_out": "User logout",
    "vexpenses_token_refreshed": "User refresh token",
    "vexpenses_refresh_reuse_detected": "Refresh token reuse detected",
    "vexpenses_password_reset_requested": "Password reset requested",
    "vexpenses_password_reset_completed": "Password reset completed",
    "vexpenses_profile_viewed": "Get user",
    "vexpenses_profile_updated": "Update user",
    "vexpenses_password_changed": "Password changed",
    "vexpenses_users_listed": "Get users",
    "vexpenses_user_exported": "Export user",
    # this plugin's own
    "vexpenses_audit_pruned": "Audit log pruned",
}


def label_from_name(hook_name):
    """``vexpenses_greeting_sent`` -> ``Greeting sent``."""
    name = hook_name.removeprefix("vexpenses_").replace("_", " ").strip()
    return (name[:1].upper() + name[1:]) if name else hook_name


class Labels:
    def __init__(self, *tables):
        self.table = {}
        for table in tables:
            self.table.update(table)

    def __call__(self, hook_name):
        label = self.table.get(hook_name)
        if label is None:
            label = self.table[hook_name] = label_from_name(hook_name)
        return label


def _user(payload):
    user = payload.get("user")
    if isinstance(user, dict):
        return f"User {user.get('id')} ({user.get('email')})"
    return "A user"


def _session(payload):
    return payload.get("session_id") or "?"


DESCRIPTIONS = {
    "vexpenses_user_registered": lambda p: f"{_user(p)} registered.",
    "vexpenses_user_logged_in": lambda p: f"{_user(p)} logged in (session {_session(p)}).",
    "vexpenses_login_failed": lambda p: f"Failed login for {p.get('email')}.",
    "vexpenses_user_logged_out": lambda p: (
        f"{_user(p)} ended session {p['session_id']}." if p.get("session_id")
        else f"{_user(p)} ended every session."
    ),
    "vexpenses_token_refreshed": lambda p: (
        f"{_user(p)} got a new access token for session {_session(p)}."
    ),
    "vexpenses_refresh_reuse_detected": lambda p: (
        f"An already used refresh token of {_user(p)} came back; "
        f"session {_session(p)} was ended."
    ),
    "vexpenses_password_reset_requested": lambda p: (
        f"A password reset link was requested for {_user(p)}."
    ),
    "vexpenses_password_reset_completed": lambda p: (
        f"{_user(p)} set a new password; {p.get('sessions_ended')} session(s) ended."
    ),
    "vexpenses_profile_viewed": lambda p: f"{_user(p)} viewed their profile.",
    "vexpenses_profile_updated": lambda p: (
        f"{_user(p)} updated their profile ({', '.join(map(str, p['fields']))})."
    ),
    "vexpenses_password_changed": lambda p: (
        f"{_user(p)} changed their password; {p.get('sessions_ended')} other session(s) "
        f"ended."
    ),
    "vexpenses_users_listed": lambda p: f"{_user(p)} listed users{_filters(p.get('filters'))}.",
    "vexpenses_user_exported": lambda p: f"{_user(p)} exported their data.",
    "vexpenses_audit_pruned": lambda p: (
        f"{p.get('deleted')} audit row(s) created before {p.get('cutoff')} were deleted; "
        f"the chain now starts at row {p.get('first_kept_id')}."
    ),
}


def _filters(filters):
    if not isinstance(filters, dict):
        return ""
    used = [f"{k}={v}" for k, v in filters.items() if v not in (None, "")]
    return f" (filters: {', '.join(used)})" if used else ""


def describe(hook_name, label, payload):
    """A sentence for the row, made from the *redacted* payload only."""
    describe_known = DESCRIPTIONS.get(hook_name)
    if describe_known is not None:
        try:
            return describe_known(payload)
        except (KeyError, TypeError, AttributeError):
            pass  # a hook called with unexpected arguments: fall back
    parts = []
    for key, value in payload.items():
        if isinstance(value, dict) and "id" in value:
            value = value["id"]
        if value is None or isinstance(value, str | int | float | bool):
            parts.append(f"{key}={value}")
    return f"{label}: {', '.join(parts)}." if parts else f"{label}."
