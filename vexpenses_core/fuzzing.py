"""Schemathesis against a served app: the published OpenAPI document is the truth.

:func:`fuzz` loads ``/api/v1/openapi.json`` from a running server and runs
Schemathesis's phases (examples, coverage, fuzzing; stateful when the
document has links) with every check it has, then returns what it found
as readable lines; an empty list means nothing. tests/test_schema_fuzz.py
runs it with a fixed seed and a small budget on every database;
benchmarks/fuzz.py runs it with any seed and budget, by hand.

Over real HTTP (waitress, see :func:`~vexpenses_core.testing.live_server`)
rather than in-process WSGI: that is what a client reaches, and
Schemathesis 4's WSGI transport fails its own ``ignored_auth`` probe.
Needs the test extra (schemathesis).
"""

import schemathesis
from schemathesis.engine import events, from_schema

OPENAPI_PATH = "/api/v1/openapi.json"

# What `make test` runs. The seed is arbitrary but fixed, so that a failure
# reproduces; the budget keeps each database's run near a minute on CI's VM.
SEED = 90210
MAX_EXAMPLES = 25

# Checks that cannot apply to an operation, and why. Everything else runs.
NOT_APPLICABLE = [
    # positive_data_acceptance expects every schema-valid body to be accepted,
    # but the API's rules across fields or against stored data are not JSON
    # Schema: the confirmation must equal the password, an e-mail must be free
    # (register) or hold a live reset token (recover-password). Invalid data
    # is still fuzzed here, and negative_data_rejection still runs.
    ("POST", "/api/v1/user/register", "positive_data_acceptance"),
    ("POST", "/api/v1/user/recover-password", "positive_data_acceptance"),
    # The same rules as register's (a name is folded before it is measured, a
    # birth date is not after today), and the current password must be right.
    ("PATCH", "/api/v1/user/me", "positive_data_acceptance"),
    ("POST", "/api/v1/user/me/password", "positive_data_acceptance"),
    ("DELETE", "/api/v1/user/me", "positive_data_acceptance"),
    # Register's rules again, and an admin may not demote or disable the last
    # enabled admin.
    ("PATCH", "/api/v1/user/{id}", "positive_data_acceptance"),
    # A cursor is only valid if the service issued it (an opaque string); the
    # log's "to" must not precede its "from".
    ("GET", "/api/v1/user", "positive_data_acceptance"),
    ("GET", "/api/v1/log", "positive_data_acceptance"),
]


def fuzz(base_url, token_for, *, seed=SEED, max_examples=MAX_EXAMPLES):
    """Fuzz the app served at ``base_url``; return a list of findings (strings).

    ``token_for(operation)`` returns a bearer token for one request: a new
    session each time, since a fuzzed logout ends the session it was sent with;
    and of a new user each time, since the admin routes are fuzzed too
    (``DELETE``, ``PATCH`` with ``disabled``, ``logout-all`` on
    ``/api/v1/user/{id}``): a user the fuzzer may delete or disable must not
    be the one the next request logs in as.
    """
    config = schemathesis.Config.from_dict({
        "seed": seed,
        "base-url": base_url,
        # No state kept between runs: a given seed and budget always run the same cases.
        "generation": {"max-examples": max_examples, "database": "none"},
        "cache": {"enabled": False},
        "operations": [
            {"include-method": method, "include-path": path, "checks": {check: {"enabled": False}}}
            for method, path, check in NOT_APPLICABLE
        ],
    })
    schema = schemathesis.openapi.from_url(base_url + OPENAPI_PATH, config=config)

    @schema.auth(refresh_interval=None)
    class FreshSession:
        def get(self, case, context):
            return token_for(context.operation)

        def set(self, case, data, context):
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    findings = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            findings.extend(_failures(event))
        elif isinstance(event, events.NonFatalError):
            findings.append(f"error in {event.label}: {event.value!r}")
        elif isinstance(event, events.FatalError):
            findings.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            findings.extend(f"after the run: {failure.title}" for failure in event.failures)
    return findings


def _failures(event):
    recorder = event.recorder
    for case_id, checks in recorder.checks.items():
        for check in checks:
            info = check.failure_info
            if info is None:
                continue
            failure = info.failure
            response = recorder.find_response(case_id=case_id)
            answer = ""
            if response is not None:
                answer = f"\n    -> {response.status_code} {response.content[:300]!r}"
            yield (f"{recorder.label} [{event.phase.value}] {check.name}: {failure.title}\n"
                   f"    {failure.message}\n    {info.code_sample}{answer}")
