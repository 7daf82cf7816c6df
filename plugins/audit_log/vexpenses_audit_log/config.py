"""The plugin's settings, ``vexpenses.audit_log.*``, parsed once at start-up."""

import dataclasses

from pyramid.settings import asbool, aslist

from vexpenses_core.settings import (
    ConfigurationError,
    PluginSettings,
    Problems,
    Setting,
    number,
    one_of,
)


def _switch(raw):
    """``auto`` (None) or a boolean."""
    value = str(raw).strip().lower()
    return None if value == "auto" else asbool(value)


def _key_words(raw):
    return tuple(word.lower() for word in aslist(str(raw).replace(",", " ")))


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
                f"{SETTINGS.prefix}labels: each line must read 'hook_name = Label', "
                f"not {line!r}"
            )
        labels[hook.strip()] = label.strip()
    return labels


# Worded as "a number" for the whole numbers too, as the messages always were.
A_NUMBER = "must be a number of at least 1"

# Only the chain key has an environment variable: a secret has no place in an ini file.
SETTINGS = PluginSettings(
    "audit_log",
    Setting("visibility", "own", one_of("own", "all", fold=True), env=False,
            rule="must be own or all"),
    Setting("transport", "auto", one_of("auto", "memory", "redis", fold=True), env=False,
            rule="must be auto, memory or redis"),
    Setting("flush_seconds", "1.0", number(0.01, float), env=False),
    Setting("batch_size", "500", number(), env=False, rule=A_NUMBER),
    Setting("max_buffer", "100000", number(), env=False, rule=A_NUMBER),
    Setting("labels", "", parse_labels, env=False),
    Setting("redact_keys", "", _key_words, env=False),
    Setting("chain_key", "", secret=True),
    Setting("sigterm", "auto", _switch, env=False),
    Setting("drain", "auto", one_of("auto", "everywhere", "workers", fold=True), env=False,
            rule="must be auto, everywhere or workers"),
)


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
    problems = Problems()
    options = SETTINGS.read(settings, environ, problems)
    transport = options.get("transport")
    redis_url = settings.get("vexpenses.redis_url") or ""
    if transport == "auto":
        transport = "redis" if redis_url else "memory"
    if transport == "redis" and not redis_url:
        problems.add(
            f"{SETTINGS.prefix}transport is redis but no Redis is configured: "
            "set vexpenses.redis_url (VEXPENSES_REDIS_URL)"
        )
    problems.raise_if_any()
    sigterm = options["sigterm"]
    if sigterm is None:
        # Tests must not change how the test runner reacts to SIGTERM.
        sigterm = settings.get("vexpenses.env") != "testing"
    drain = options["drain"]
    if transport != "redis":
        drain = "everywhere"  # nothing waits in Redis: each process writes its own
    elif drain == "auto":
        # With Redis tasks there are workers by definition: leave the writing to them.
        broker = str(settings.get("vexpenses.tasks.broker") or "redis").strip().lower()
        drain = "workers" if broker == "redis" else "everywhere"
    key = str(options["chain_key"])
    return AuditSettings(
        visibility=options["visibility"],
        transport=transport,
        flush_seconds=options["flush_seconds"],
        batch_size=options["batch_size"],
        max_buffer=options["max_buffer"],
        labels=options["labels"],
        redact_keys=options["redact_keys"],
        chain_key=key.encode() if key else None,
        sigterm=sigterm,
        drain=drain,
    )
