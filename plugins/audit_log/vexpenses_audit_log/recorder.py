"""The hook-call monitor: one record per hook call made in a request or a task.

It is attached to the plugin manager with pluggy's
``add_hookcall_monitoring``, so it sees every hook call, of the core and of
any plugin, including hooks a plugin adds later: no hookimpl knows it is
there. It only builds a small dict and hands it to the pipeline; the
database write happens later, off the request's thread and outside its
transaction.
"""

import datetime
import json
import logging
import uuid

from vexpenses_core.accounts.validation import normalize_email
from vexpenses_core.models import User
from vexpenses_core.scripting import is_job

from .labels import describe

log = logging.getLogger(__name__)

# Start-up and configuration hooks are not actions: they run once per
# process, outside any request, and carry no user. (They have no ``request``
# argument either; the list makes the rule explicit for the core's hooks.)
CONFIGURATION_HOOKS = frozenset({
    "vexpenses_includeme",
    "vexpenses_tasks",
    "vexpenses_openapi",
    "vexpenses_migration_locations",
    "vexpenses_add_commands",
    "vexpenses_addhooks",
    "vexpenses_app_created",
    "vexpenses_audit_labels",
    # Gathering a user's data for an export is a query; vexpenses_user_exported
    # is the action. Erasing it is part of the deletion; vexpenses_user_deleted
    # is the action.
    "vexpenses_export_user",
    "vexpenses_erase_user",
})

# Whose row it is, where the acting user is not simply the authenticated one.
NO_USER_HOOKS = frozenset({"vexpenses_login_failed"})  # nobody proved who they are
# About one account, on routes that need no token (or in a task): the row is
# that account's, even in a job, and never whoever sent a token along, so that
# nobody's own log shows another person's address.
SUBJECT_USER_HOOKS = frozenset({
    "vexpenses_user_logged_in",
    "vexpenses_user_registered",
    "vexpenses_token_refreshed",
    "vexpenses_refresh_reuse_detected",
    "vexpenses_password_reset_requested",
    "vexpenses_password_reset_completed",
    "vexpenses_email_verification_requested",
    "vexpenses_email_verified",
    "vexpenses_email_changed",
})
# The person asked to be forgotten: their row names them by id only.
FORGOTTEN_USER_HOOKS = frozenset({"vexpenses_user_deleted"})

# What a failed login stores instead of what was typed, when that is not an
# address: people type their password into the e-mail field.
NOT_AN_ADDRESS = "[not an e-mail address]"

MAX_PAYLOAD_CHARS = 16_000  # fits MySQL TEXT (64 KiB) even at 4 bytes a character


def acting_user_id(hook_name, request, kwargs, subject_id):
    if hook_name in NO_USER_HOOKS:
        return None
    if hook_name in SUBJECT_USER_HOOKS:
        return subject_id
    if is_job(request):
        return None
    # The authenticated user acted; on anonymous routes (register, refresh
    # with a refresh token, password reset) the user the hook names did.
    try:
        authenticated = request.authenticated_userid
    except Exception:  # e.g. a token to check in a transaction that already failed
        authenticated = None
    return authenticated or subject_id


class Recorder:
    def __init__(self, pipeline, labels, redactor):
        self.pipeline = pipeline
        self.labels = labels
        self.redactor = redactor

    def before(self, hook_name, hook_impls, kwargs):
        pass

    def after(self, outcome, hook_name, hook_impls, kwargs):
        request = kwargs.get("request")
        if request is None or hook_name in CONFIGURATION_HOOKS:
            return
        try:
            record = self.build(hook_name, request, kwargs, outcome.exception)
        except Exception as exc:  # auditing must never break the call it watches
            log.error("could not record the %s hook call (%s)", hook_name, type(exc).__name__)
            return
        self.pipeline.put(record)

    def build(self, hook_name, request, kwargs, exception=None, now=None):
        redactor = self.redactor
        kwargs = {k: v for k, v in kwargs.items() if k != "request"}
        if hook_name == "vexpenses_login_failed":
            kwargs["email"] = normalize_email(kwargs.get("email")) or NOT_AN_ADDRESS
        subject = kwargs.get("user")
        subject_id = subject.id if isinstance(subject, User) else None
        if hook_name in FORGOTTEN_USER_HOOKS and isinstance(subject, User):
            kwargs["user"] = {"id": subject_id}
        payload = redactor.safe(kwargs)
        label = self.labels(hook_name)
        description = describe(hook_name, label, payload)
        if exception is not None:
            description += f" A hookimpl raised {type(exception).__name__}."
        job = is_job(request)
        payload_text = json.dumps(payload, sort_keys=True, ensure_ascii=False,
                                  separators=(",", ":"))
        if len(payload_text) > MAX_PAYLOAD_CHARS:
            payload_text = json.dumps({"truncated": True, "keys": sorted(payload)[:50]},
                                      ensure_ascii=False, separators=(",", ":"))
        now = now or datetime.datetime.now(datetime.UTC)
        return {
            "uid": uuid.uuid4().hex,
            "hook": redactor.text(hook_name, 255),
            "action": redactor.text(label, 255),
            "description": redactor.text(description, 1000),
            "user_id": acting_user_id(hook_name, request, kwargs, subject_id),
            # Whom the row is about (an admin's target): erased with them.
            "subject_id": subject_id,
            "ip_address": None if job else redactor.text(request.client_addr, 45),
            "user_agent": None if job else redactor.text(request.user_agent, 255),
            "request_id": redactor.text(request.environ.get("vexpenses.request_id"), 128),
            "payload": payload_text,
            "created_at": now.isoformat(),
        }


def includeme(config):
    """Build the pipeline and attach the recorder to the plugin manager. Safe twice."""
    from vexpenses_core.redis_client import redis_key

    from .chain import ChainWriter
    from .config import parse_settings
    from .labels import BUILTIN_LABELS, Labels
    from .pipeline import AuditPipeline
    from .redaction import Redactor
    from .relay import RedisRelay

    registry = config.registry
    if getattr(registry, "audit_log", None) is not None:
        return
    settings = parse_settings(registry.settings)
    pm = registry.pm
    contributed = [table for table in pm.hook.vexpenses_audit_labels() if table]
    labels = Labels(BUILTIN_LABELS, *reversed(contributed), settings.labels)
    relay = None
    if settings.transport == "redis":
        relay = RedisRelay(registry.redis, redis_key(registry, "audit_log", "queue"),
                           redis_key(registry, "audit_log", "lock"), settings.batch_size)
    pipeline = AuditPipeline(
        ChainWriter(registry.dbengine, settings.chain_key),
        batch_size=settings.batch_size,
        flush_seconds=settings.flush_seconds,
        max_buffer=settings.max_buffer,
        relay=relay,
        may_drain=lambda: settings.drain == "everywhere" or registry.queue.in_worker,
    )
    recorder = Recorder(pipeline, labels, Redactor(settings.redact_keys))
    registry.audit_log_settings = settings
    registry.audit_log = pipeline
    registry.audit_log_recorder = recorder
    pm.add_hookcall_monitoring(recorder.before, recorder.after)
