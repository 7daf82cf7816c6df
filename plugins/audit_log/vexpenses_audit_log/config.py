"""The plugin's settings, ``vexpenses.audit_log.*``, parsed once at start-up."""

import dataclasses
import os

from pyramid.settings import asbool, aslist

from vexpenses_core.settings import ConfigurationError

PREFIX = "vexpenses.audit_log."
#: The one setting with an environment variable: a secret has no place in an ini file.
CHAIN_KEY_ENV = "VEXPENSES_AUDIT_LOG_CHAIN_KEY"

DEFAULTS = {
    "visibility": "own",
    "transport": "auto",
    "flush_seconds": "1.0",
    "batch_size": "500",
    "max_buffer": "100000",
    "labels": "",
    "redact_keys": "",
    "chain_key": "",
    "sigterm": "auto",
    "drain": "auto",
}


@dataclasses.dataclass(frozen=True)
class AuditSettings:
    visibility: str  # "own" or "all"
    transport: str  # "memory" or "redis"
    flush_seconds: float
    batch_size: int
    max_buffer: int
    labels: dict
    redact_keys: tuple
    chain_key: bytes | None
    sigterm: bool
    drain: str  # "everywhere" or "workers": which processes write Redis's records


def parse_settings(settings, environ=None):
    environ = os.environ if environ is None else environ
    raw = {name: settings.get(PREFIX + name, default) for name, default in DEFAULTS.items()}
    if CHAIN_KEY_ENV in environ:  # the core's rule: the variable wins, even empty
        raw["chain_key"] = environ[CHAIN_KEY_ENV]

    visibility = str(raw["visibility"]).strip().lower()
    if visibility not in ("own", "all"):
        raise ConfigurationError(
            f"{PREFIX}visibility must be own or all, not {raw['visibility']!r}"
        )
    transport = str(raw["transport"]).strip().lower()
    if transport not in ("auto", "memory", "redis"):
        raise ConfigurationError(
            f"{PREFIX}transport must be auto, memory or redis, not {raw['transport']!r}"
        )
    redis_url = settings.get("vexpenses.redis_url") or ""
    if transport == "auto":
        transport = "redis" if redis_url else "memory"
    if transport == "redis" and not redis_url:
        raise ConfigurationError(
            f"{PREFIX}transport is redis but no Redis is configured: "
            "set vexpenses.redis_url (VEXPENSES_REDIS_URL)"
        )
    sigterm = str(raw["sigterm"]).strip().lower()
    if sigterm == "auto":
        # Tests must not change how the test runner reacts to SIGTERM.
        sigterm_on = settings.get("vexpenses.env") != "testing"
    else:
        sigterm_on = asbool(sigterm)
    drain = str(raw["drain"]).strip().lower()
    if drain not in ("auto", "everywhere", "workers"):
        raise ConfigurationError(
            f"{PREFIX}drain must be auto, everywhere or workers, not {raw['drain']!r}")
    if transport != "redis":
        drain = "everywhere"  # nothing waits in Redis: each process writes its own
    elif drain == "auto":
        # With Redis tasks there are workers by definition: leave the writing to them.
        broker = str(settings.get("vexpenses.tasks.broker") or "redis").strip().lower()
        drain = "workers" if broker == "redis" else "everywhere"
    key = str(raw["chain_key"])
    return AuditSettings(
        visibility=visibility,
        transport=transport,
        flush_seconds=_number(raw, "flush_seconds", float, 0.01),
        batch_size=_number(raw, "batch_size", int, 1),
        max_buffer=_number(raw, "max_buffer", int, 1),
        labels=parse_labels(raw["labels"]),
        redact_keys=tuple(k.lower() for k in aslist(str(raw["redact_keys"]).replace(",", " "))),
        chain_key=key.encode() if key else None,
        sigterm=sigterm_on,
        drain=drain,
    )


def _number(raw, name, kind, minimum):
    try:
        value = kind(raw[name])
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise ConfigurationError(
            f"{PREFIX}{name} must be a number of at least {minimum}, not {raw[name]!r}"
        )
    return value


def parse_labels(text):
    """``hook_name = Label`` lines (or a dict, from code) into ``{hook: label}``."""
    if isinstance(text, dict):
        return {str(k): str(v) for k, v in text.items()}
    labels = {}
    for line in str(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        hook, sep, label = line.partition("=")
        if not sep or not hook.strip() or not label.strip():
            raise ConfigurationError(
                f"{PREFIX}labels: each line must read 'hook_name = Label', not {line!r}"
            )
        labels[hook.strip()] = label.strip()
    return labels
