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
    "vexpenses_email_verification_requested": "Verify email",
    "vexpenses_email_verified": "Email verified",
    "vexpenses_email_change_requested": "Change email requested",
    "vexpenses_email_changed": "Email changed",
    "vexpenses_user_viewed": "Get user by id",
    "vexpenses_user_updated": "Update user by admin",
    "vexpenses_user_disabled": "Disable user",
    "vexpenses_user_enabled": "Enable user",
    "vexpenses_user_sessions_revoked": "End user sessions",
    "vexpenses_user_deleted": "Delete user",
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
    "vexpenses_email_verification_requested": lambda p: (
        f"A verification link was made for {_user(p)}."
    ),
    "vexpenses_email_verified": lambda p: f"{_user(p)} verified their address.",
    "vexpenses_email_change_requested": lambda p: (
        f"{_user(p)} asked to change their address to {p['new_email']}."
    ),
    "vexpenses_email_changed": lambda p: (
        f"{_user(p)} confirmed a new address (it was {p['old_email']})."
    ),
    "vexpenses_user_viewed": lambda p: f"{_user(p)} was looked up by id.",
    "vexpenses_user_updated": lambda p: (
        f"{_user(p)} was changed by an admin ({', '.join(map(str, p['fields']))})."
    ),
    "vexpenses_user_disabled": lambda p: (
        f"{_user(p)} was disabled; {p.get('sessions_ended')} session(s) ended."
    ),
    "vexpenses_user_enabled": lambda p: f"{_user(p)} was enabled again.",
    "vexpenses_user_sessions_revoked": lambda p: (
        f"An admin ended every session of {_user(p)}; {p.get('sessions_ended')} "
        f"session(s) ended."
    ),
    # The payload holds the id only (recorder.FORGOTTEN_USER_HOOKS).
    "vexpenses_user_deleted": lambda p: (
        f"User {p['user']['id']} was deleted by an admin." if p.get("by_admin")
        else f"User {p['user']['id']} deleted their account."
    ),
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
