"""Settings: defaults, environment overrides and start-up checks.

Every setting an operator may need is listed in ``ENV_SETTINGS``. Its
environment variable, when set (even to an empty string), wins over the ini
file, so that containers can be configured without editing files.
"""

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable
from urllib.parse import parse_qs, unquote, urlsplit

from pyramid.settings import asbool, aslist

#: setting name -> environment variable
ENV_SETTINGS = {
    "vexpenses.env": "VEXPENSES_ENV",
    "vexpenses.database_url": "VEXPENSES_DATABASE_URL",
    "vexpenses.redis_url": "VEXPENSES_REDIS_URL",
    "vexpenses.redis_prefix": "VEXPENSES_REDIS_PREFIX",
    "vexpenses.redis_timeout": "VEXPENSES_REDIS_TIMEOUT",
    "vexpenses.plugins": "VEXPENSES_PLUGINS",
    "vexpenses.jwt_secret": "VEXPENSES_JWT_SECRET",
    "vexpenses.base_url": "VEXPENSES_BASE_URL",
    "vexpenses.trusted_proxies": "VEXPENSES_TRUSTED_PROXIES",
    "vexpenses.upload_dir": "VEXPENSES_UPLOAD_DIR",
    "vexpenses.storage_url": "VEXPENSES_STORAGE_URL",
    "vexpenses.language": "VEXPENSES_LANGUAGE",
    "vexpenses.auto_migrate": "VEXPENSES_AUTO_MIGRATE",
    "vexpenses.tasks.broker": "VEXPENSES_TASK_BROKER",
    "vexpenses.tasks.queue": "VEXPENSES_TASK_QUEUE",
    "vexpenses.tasks.redelivery_seconds": "VEXPENSES_TASK_REDELIVERY_SECONDS",
    "vexpenses.tasks.outbox_seconds": "VEXPENSES_TASK_OUTBOX_SECONDS",
    "vexpenses.worker.threads": "VEXPENSES_WORKER_THREADS",
    "vexpenses.max_body_bytes": "VEXPENSES_MAX_BODY_BYTES",
    "vexpenses.access_token_seconds": "VEXPENSES_ACCESS_TOKEN_SECONDS",
    "vexpenses.identity_cache_seconds": "VEXPENSES_IDENTITY_CACHE_SECONDS",
    "vexpenses.identity_cache_local_ms": "VEXPENSES_IDENTITY_CACHE_LOCAL_MS",
    "vexpenses.jwt_algorithm": "VEXPENSES_JWT_ALGORITHM",
    "vexpenses.jwt_private_key_file": "VEXPENSES_JWT_PRIVATE_KEY_FILE",
    "vexpenses.jwt_public_key_file": "VEXPENSES_JWT_PUBLIC_KEY_FILE",
    "vexpenses.refresh_token_days": "VEXPENSES_REFRESH_TOKEN_DAYS",
    "vexpenses.session_max_days": "VEXPENSES_SESSION_MAX_DAYS",
    "vexpenses.legacy_get_refresh": "VEXPENSES_LEGACY_GET_REFRESH",
    "vexpenses.reset_token_minutes": "VEXPENSES_RESET_TOKEN_MINUTES",
    "vexpenses.verify_token_minutes": "VEXPENSES_VERIFY_TOKEN_MINUTES",
    "vexpenses.email_change_token_minutes": "VEXPENSES_EMAIL_CHANGE_TOKEN_MINUTES",
    "vexpenses.accounts.require_verified_email": "VEXPENSES_REQUIRE_VERIFIED_EMAIL",
    "vexpenses.accounts.user_list": "VEXPENSES_USER_LIST",
    "vexpenses.argon2.time_cost": "VEXPENSES_ARGON2_TIME_COST",
    "vexpenses.argon2.memory_cost": "VEXPENSES_ARGON2_MEMORY_COST",
    "vexpenses.argon2.parallelism": "VEXPENSES_ARGON2_PARALLELISM",
    "vexpenses.ratelimit.enabled": "VEXPENSES_RATELIMIT_ENABLED",
    "vexpenses.ratelimit.login_ip": "VEXPENSES_RATELIMIT_LOGIN_IP",
    "vexpenses.ratelimit.login_account": "VEXPENSES_RATELIMIT_LOGIN_ACCOUNT",
    "vexpenses.ratelimit.login_free_failures": "VEXPENSES_RATELIMIT_LOGIN_FREE_FAILURES",
    "vexpenses.ratelimit.forgot_ip": "VEXPENSES_RATELIMIT_FORGOT_IP",
    "vexpenses.ratelimit.forgot_email": "VEXPENSES_RATELIMIT_FORGOT_EMAIL",
    "vexpenses.ratelimit.register_ip": "VEXPENSES_RATELIMIT_REGISTER_IP",
    "vexpenses.ratelimit.export": "VEXPENSES_RATELIMIT_EXPORT",
    "vexpenses.ratelimit.verify_resend": "VEXPENSES_RATELIMIT_VERIFY_RESEND",
    "vexpenses.ratelimit.email_change": "VEXPENSES_RATELIMIT_EMAIL_CHANGE",
}

DEFAULTS = {
    "vexpenses.env": "development",
    "vexpenses.database_url": "sqlite:///vexpenses.sqlite",
    "vexpenses.redis_url": "",
    "vexpenses.redis_prefix": "vexpenses:",
    # Seconds a Redis command may take (connect, or wait for an answer) before
    # the request gives up with a 503: a dead primary must not hang requests.
    "vexpenses.redis_timeout": "5",
    "vexpenses.plugins": "",
    "vexpenses.jwt_secret": "",
    "vexpenses.base_url": "http://localhost:6543",
    "vexpenses.trusted_proxies": "",
    "vexpenses.upload_dir": "var/uploads",
    # Empty: file:// and the absolute vexpenses.upload_dir.
    "vexpenses.storage_url": "",
    "vexpenses.language": "pt_BR",
    "vexpenses.auto_migrate": "false",
    "vexpenses.tasks.broker": "",
    "vexpenses.tasks.queue": "vexpenses:tasks",
    "vexpenses.tasks.redelivery_seconds": "60",
    "vexpenses.tasks.outbox_seconds": "30",
    "vexpenses.worker.threads": "2",
    "vexpenses.max_body_bytes": str(1024 * 1024),
    "vexpenses.access_token_seconds": "900",
    "vexpenses.identity_cache_seconds": "300",
    "vexpenses.identity_cache_local_ms": "100",
    "vexpenses.jwt_algorithm": "HS256",
    "vexpenses.jwt_private_key_file": "",
    "vexpenses.jwt_public_key_file": "",
    "vexpenses.refresh_token_days": "14",
    "vexpenses.session_max_days": "30",
    "vexpenses.legacy_get_refresh": "true",
    "vexpenses.reset_token_minutes": "60",
    # A verification link may wait in an inbox for a while; a change of address
    # is something the user is doing now.
    "vexpenses.verify_token_minutes": "2880",
    "vexpenses.email_change_token_minutes": "60",
    # The original app's behaviour: logins do not wait for a verified address,
    # and any authenticated user lists every user.
    "vexpenses.accounts.require_verified_email": "false",
    "vexpenses.accounts.user_list": "all",
    "vexpenses.argon2.time_cost": "3",
    "vexpenses.argon2.memory_cost": "65536",
    "vexpenses.argon2.parallelism": "4",
    "vexpenses.ratelimit.enabled": "true",
    "vexpenses.ratelimit.login_ip": "20 per minute",
    "vexpenses.ratelimit.login_account": "10 per 15 minutes",
    "vexpenses.ratelimit.login_free_failures": "3",
    "vexpenses.ratelimit.forgot_ip": "10 per hour",
    "vexpenses.ratelimit.forgot_email": "3 per hour",
    "vexpenses.ratelimit.register_ip": "20 per hour",
    "vexpenses.ratelimit.export": "5 per hour",
    # Like forgot_email: each one sends a mail.
    "vexpenses.ratelimit.verify_resend": "3 per hour",
    "vexpenses.ratelimit.email_change": "3 per hour",
}

JWT_ALGORITHMS = ("HS256", "RS256", "EdDSA")

# Used only outside production, so that the embedded default starts with no
# set-up.  Tokens signed with it are worthless anywhere else.
DEVELOPMENT_SECRET = "vexpenses-development-secret-do-not-use-in-production"


class ConfigurationError(Exception):
    """A setting is missing or wrong; the message says which and how to fix it.

    One error may carry several problems found at once: ``problems`` lists
    their messages, and the error's text is those messages, one per line.
    ``ConfigurationError(*problems)`` also takes other errors, whose
    problems it carries.
    """

    def __init__(self, *problems):
        self.problems = []
        for problem in problems:
            if isinstance(problem, ConfigurationError):
                self.problems.extend(problem.problems)
            else:
                self.problems.append(str(problem))
        super().__init__("\n".join(self.problems))


class Problems:
    """Collects configuration problems, so that one run reports them all.

    ::

        problems = Problems()
        with problems.collect():
            check_one()        # a ConfigurationError here is kept...
        with problems.collect():
            check_another()    # ...and this still runs
        problems.raise_if_any()
    """

    def __init__(self):
        self.messages = []

    def __bool__(self):
        return bool(self.messages)

    def add(self, error):
        """Keep ``error``'s problems (a :class:`ConfigurationError` or a message)."""
        self.messages.extend(ConfigurationError(error).problems)

    @contextlib.contextmanager
    def collect(self):
        """Keep a :class:`ConfigurationError` raised inside the block, and go on."""
        try:
            yield
        except ConfigurationError as exc:
            self.add(exc)

    def raise_if_any(self):
        """Raise one :class:`ConfigurationError` carrying every problem kept."""
        if self.messages:
            raise ConfigurationError(*self.messages)


def environ_for(settings):
    """The ``VEXPENSES_*`` variables that give another process the same core settings.

    ``settings`` may be raw (strings) or normalised (lists, booleans, numbers);
    what is missing is left out. For worker and command subprocesses.
    """
    environ = {}
    for name, var in ENV_SETTINGS.items():
        value = settings.get(name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, list | tuple):
            value = " ".join(value)
        environ[var] = str(value)
    return environ


POSITIVE_INTEGERS = (
    "vexpenses.tasks.redelivery_seconds",
    "vexpenses.tasks.outbox_seconds",
    "vexpenses.worker.threads",
    "vexpenses.max_body_bytes",
    "vexpenses.access_token_seconds",
    "vexpenses.refresh_token_days",
    "vexpenses.session_max_days",
    "vexpenses.reset_token_minutes",
    "vexpenses.verify_token_minutes",
    "vexpenses.email_change_token_minutes",
    "vexpenses.argon2.time_cost",
    "vexpenses.argon2.memory_cost",
    "vexpenses.argon2.parallelism",
    "vexpenses.ratelimit.login_free_failures",
)
RATES = ("ratelimit.login_ip", "ratelimit.login_account", "ratelimit.forgot_ip",
         "ratelimit.forgot_email", "ratelimit.register_ip", "ratelimit.export",
         "ratelimit.verify_resend", "ratelimit.email_change")


def normalize_settings(settings, environ=None):
    """Return a copy of ``settings`` with defaults, env overrides and parsed values.

    Idempotent: normalising twice gives the same result. Raises one
    :class:`ConfigurationError` that carries every problem found.
    """
    result, problems = read_settings(settings, environ)
    problems.raise_if_any()
    return result


def read_settings(settings, environ=None):
    """``(settings, problems)``: :func:`normalize_settings` without the raising.

    A bad value is left as it was given and its message is in ``problems``
    (:class:`Problems`), so that ``vexpenses check`` reports every problem
    at once.
    """
    environ = os.environ if environ is None else environ
    problems = Problems()
    result = dict(DEFAULTS)
    result.update(settings or {})
    plugins = []
    with problems.collect():
        plugins = plugin_list(result["vexpenses.plugins"], "vexpenses.plugins")
    for name, var in ENV_SETTINGS.items():
        if var in environ:
            result[name] = environ[var]
    if "VEXPENSES_PLUGINS" in environ:
        with problems.collect():
            plugins = plugin_list(environ["VEXPENSES_PLUGINS"], "VEXPENSES_PLUGINS", plugins)
    result["vexpenses.plugins"] = plugins

    def parse(name, parser, *args, **kwargs):
        with problems.collect():
            result[name] = parser(*args, **kwargs)

    parse("vexpenses.env", _env, result["vexpenses.env"])
    parse("vexpenses.accounts.user_list", _user_list, result["vexpenses.accounts.user_list"])
    for name in ("vexpenses.auto_migrate", "vexpenses.ratelimit.enabled",
                 "vexpenses.legacy_get_refresh", "vexpenses.accounts.require_verified_email"):
        result[name] = asbool(result[name])
    for name in POSITIVE_INTEGERS:
        parse(name, _positive_int, name, result[name])
    parse("vexpenses.identity_cache_seconds", _positive_int,
          "vexpenses.identity_cache_seconds", result["vexpenses.identity_cache_seconds"],
          zero=True)
    parse("vexpenses.identity_cache_local_ms", _bounded_int, "vexpenses.identity_cache_local_ms",
          result["vexpenses.identity_cache_local_ms"], LOCAL_MS_MAX)
    memory, parallelism = (result["vexpenses.argon2.memory_cost"],
                           result["vexpenses.argon2.parallelism"])
    if isinstance(memory, int) and isinstance(parallelism, int) and memory < 8 * parallelism:
        problems.add("vexpenses.argon2.memory_cost (KiB) must be at least 8 times "
                     "vexpenses.argon2.parallelism")
    for name in RATES:
        with problems.collect():
            _check_rate(f"vexpenses.{name}", result[f"vexpenses.{name}"])
    parse("vexpenses.language", _language, result["vexpenses.language"])
    parse("vexpenses.database_url", _database_url, result["vexpenses.database_url"])
    result["vexpenses.redis_url"] = result["vexpenses.redis_url"].strip()
    parse("vexpenses.redis_url", _redis_url, result["vexpenses.redis_url"])
    parse("vexpenses.redis_timeout", _seconds, "vexpenses.redis_timeout",
          result["vexpenses.redis_timeout"])
    parse("vexpenses.storage_url", _storage_url, result["vexpenses.storage_url"],
          result["vexpenses.upload_dir"])
    result["vexpenses.base_url"] = result["vexpenses.base_url"].rstrip("/")
    parse("vexpenses.trusted_proxies", _networks,
          "vexpenses.trusted_proxies", result["vexpenses.trusted_proxies"])
    parse("vexpenses.tasks.broker", _broker, result["vexpenses.tasks.broker"],
          result["vexpenses.redis_url"])
    with problems.collect():
        _check_secret(result)
    return result, problems


def _env(value):
    env = value.strip().lower()
    if env not in ("development", "testing", "production"):
        raise ConfigurationError(
            f"vexpenses.env (VEXPENSES_ENV) must be development, testing or production, "
            f"not {env!r}"
        )
    return env


USER_LISTS = ("all", "admins")


def _user_list(value):
    who = value.strip().lower()
    if who not in USER_LISTS:
        raise ConfigurationError(
            f"vexpenses.accounts.user_list (VEXPENSES_USER_LIST) must be all or admins, "
            f"not {who!r}"
        )
    return who


def _broker(value, redis_url):
    broker = value.strip().lower()
    if not broker:
        broker = "redis" if redis_url else "inprocess"
    if broker not in ("redis", "inprocess"):
        raise ConfigurationError(
            f"vexpenses.tasks.broker (VEXPENSES_TASK_BROKER) must be redis or inprocess, "
            f"not {broker!r}"
        )
    if broker == "redis" and not redis_url:
        raise ConfigurationError(
            "vexpenses.tasks.broker is redis but no Redis is configured: "
            "set vexpenses.redis_url or VEXPENSES_REDIS_URL"
        )
    return broker


DATABASE_URL_EXAMPLE = ("mysql+pymysql://USER:PASSWORD@HOST:3306/vexpenses?charset=utf8mb4 "
                        "or sqlite:///var/vexpenses.sqlite")


def _database_url(value):
    """Check that SQLAlchemy can read the URL and load its driver; never repeat it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    name = "vexpenses.database_url (VEXPENSES_DATABASE_URL)"
    try:
        url = make_url(value)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise ConfigurationError(
            f"{name} is not a database URL: write it as {DATABASE_URL_EXAMPLE}; "
            f"a password with @, : or / in it must be URL-encoded (%40, %3A, %2F)"
        ) from None
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ConfigurationError(
            f"{name} names a database SQLAlchemy does not know, {url.drivername!r}: "
            f"write it as {DATABASE_URL_EXAMPLE}"
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        raise ConfigurationError(
            f"{name} uses the driver {url.drivername!r}, whose Python package "
            f"{exc.name or ''} is not installed: install it, or use mysql+pymysql:// "
            f"(PyMySQL comes with vexpenses)"
        ) from None
    return value


def _redis_url(value):
    if value:
        parse_redis_url(value)  # raises ConfigurationError
    return value


SENTINEL_SCHEME = "redis+sentinel"
SENTINEL_EXAMPLE = "redis+sentinel://:PASSWORD@HOST1:26379,HOST2:26379/MASTER_NAME/0"
SETTING = "vexpenses.redis_url (VEXPENSES_REDIS_URL)"


@dataclasses.dataclass(frozen=True)
class SentinelTarget:
    """Where ``redis+sentinel://`` points: the sentinels to ask, and which master."""

    sentinels: tuple  # ((host, port), ...)
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None  # the master's and replicas'
    sentinel_password: str | None = None  # the sentinels' own, when they have one


def parse_redis_url(url):
    """Return ``url`` itself for a plain Redis URL, or a :class:`SentinelTarget`.

    ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER_NAME[/DB]``
    with an optional ``?sentinel_password=...``. Raises ConfigurationError,
    without repeating the URL (it may hold a password).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("redis", "rediss", "unix"):
        return url
    if scheme != SENTINEL_SCHEME:
        raise ConfigurationError(
            f"{SETTING} must start with redis://, rediss://, unix:// or {SENTINEL_SCHEME}://, "
            f"e.g. redis://127.0.0.1:6379/0 or {SENTINEL_EXAMPLE}")
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":")
        name = name.strip("[]")  # an IPv6 address in brackets
        if not name or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigurationError(
                f"{SETTING} must list its sentinels as HOST:PORT, separated by commas, "
                f"e.g. {SENTINEL_EXAMPLE}")
        sentinels.append((name, int(port)))
    path = [unquote(part) for part in parts.path.split("/") if part]
    if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigurationError(
            f"{SETTING} must end with the master's name that the sentinels monitor, and "
            f"optionally a database number: e.g. {SENTINEL_EXAMPLE}")
    options = parse_qs(parts.query)
    unknown = sorted(set(options) - {"sentinel_password"})
    if unknown:
        raise ConfigurationError(
            f"{SETTING} takes only the option sentinel_password, not {', '.join(unknown)}")
    return SentinelTarget(
        sentinels=tuple(sentinels),
        master=path[0],
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=options.get("sentinel_password", [None])[0],
    )


def _seconds(name, value):
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigurationError(f"{name} must be a number of seconds above 0, not {value!r}")
    return seconds


STORAGE_URL_EXAMPLE = "file:///var/lib/vexpenses/uploads or s3://BUCKET/PREFIX"


def _storage_url(value, upload_dir):
    """``file:///absolute/path`` or ``s3://bucket[/prefix]``; empty means upload_dir."""
    value = value.strip()
    if not value:
        return "file://" + os.path.abspath(upload_dir)
    name = "vexpenses.storage_url (VEXPENSES_STORAGE_URL)"
    parts = urlsplit(value)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigurationError(
                f"{name} must name an absolute folder, e.g. file:///var/lib/vexpenses/uploads "
                f"(three slashes), not {value!r}")
        return "file://" + os.path.normpath(parts.path)
    if scheme == "s3":
        # The bucket naming rules of S3 (3 to 63 lower-case letters, digits, dots, hyphens).
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", parts.netloc or ""):
            raise ConfigurationError(
                f"{name} must name a bucket, e.g. s3://vexpenses-uploads/prod: "
                f"{parts.netloc!r} is not a valid bucket name")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ConfigurationError(
                f"{name} takes no credentials or options: the AWS_* environment variables "
                f"and ~/.aws/config give them (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
                f"AWS_DEFAULT_REGION, AWS_ENDPOINT_URL)")
        prefix = parts.path.strip("/")
        return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"
    raise ConfigurationError(
        f"{name} must start with file:// or s3://, e.g. {STORAGE_URL_EXAMPLE}")


def plugin_list(value, name, base=()):
    """The plugins that ``value`` enables: it replaces ``base``, or changes it.

    Names go between spaces, commas or new lines. A plain list (``a b``)
    replaces ``base``; ``+a`` adds to it and ``-b`` takes away from it, so
    that ``VEXPENSES_PLUGINS=+hello`` keeps the ini file's plugins. Adding a
    name that is there, or taking away one that is not, changes nothing:
    applying the same changes twice gives the same list. ``name`` (the
    setting or the variable) is what a message calls ``value``.
    """
    if isinstance(value, str):
        words = aslist(value.replace(",", " "))
    else:  # already a list, e.g. normalised settings
        words = list(value)
    changes = [word for word in words if word[:1] in ("+", "-")]
    if not changes:
        return list(dict.fromkeys(words))
    if len(changes) != len(words):
        raise ConfigurationError(
            f"{name} mixes plugin names with +name or -name ({' '.join(words)}): "
            f"give either the whole list (a b) or only changes to the ini file's list "
            f"(+a -b)"
        )
    plugins = list(base)
    for word in words:
        plugin = word[1:]
        if not plugin:
            raise ConfigurationError(
                f"{name}: {word!r} names no plugin; write +name or -name without a space")
        if word[0] == "+" and plugin not in plugins:
            plugins.append(plugin)
        elif word[0] == "-" and plugin in plugins:
            plugins.remove(plugin)
    return plugins


# Every change to a user or a login session waits this long before it answers.
LOCAL_MS_MAX = 2000


def _bounded_int(name, value, most):
    number = _positive_int(name, value, zero=True)
    if number > most:
        raise ConfigurationError(f"{name} must be at most {most}, not {value!r}")
    return number


def _positive_int(name, value, zero=False):
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (number == 0 and not zero):
        kind = "a whole number, 0 or more" if zero else "a positive whole number"
        raise ConfigurationError(f"{name} must be {kind}, not {value!r}")
    return number


def _language(value):
    language = value.strip()
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", language):
        raise ConfigurationError(
            f"vexpenses.language (VEXPENSES_LANGUAGE) must be a language such as "
            f"pt_BR or en, not {value!r}"
        )
    return language


def _networks(name, value):
    """Addresses or networks, spaces or commas between them; kept as a list of strings."""
    from .proxies import parse_networks

    values = aslist(value.replace(",", " ")) if isinstance(value, str) else list(value)
    try:
        parse_networks(values)
    except ValueError as exc:
        raise ConfigurationError(
            f"{name} must list IP addresses or networks such as 10.0.0.0/8: {exc}"
        ) from None
    return values


def _check_rate(name, value):
    from limits import parse_many

    try:
        if len(parse_many(value)) != 1:
            raise ValueError(value)
    except ValueError:
        raise ConfigurationError(
            f"{name} must be one rate such as '10 per minute', not {value!r}"
        ) from None


def _check_secret(settings):
    algorithm = settings["vexpenses.jwt_algorithm"]
    if algorithm not in JWT_ALGORITHMS:
        raise ConfigurationError(
            f"vexpenses.jwt_algorithm (VEXPENSES_JWT_ALGORITHM) must be one of "
            f"{', '.join(JWT_ALGORITHMS)}, not {algorithm!r}"
        )
    if algorithm != "HS256":
        missing = [name for name in ("vexpenses.jwt_private_key_file",
                                     "vexpenses.jwt_public_key_file") if not settings[name]]
        if missing:
            raise ConfigurationError(*(
                f"{name} is required with vexpenses.jwt_algorithm = {algorithm}: "
                f"set it to a PEM file (env {ENV_SETTINGS[name]})" for name in missing))
        return
    secret = settings["vexpenses.jwt_secret"]
    if settings["vexpenses.env"] == "production":
        if not secret:
            raise ConfigurationError(
                "vexpenses.jwt_secret is not set. In production every token is signed "
                "with it: set VEXPENSES_JWT_SECRET to a random string of 32 characters "
                "or more, e.g. the output of "
                "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`."
            )
        if len(secret) < 32 or secret == DEVELOPMENT_SECRET:
            raise ConfigurationError(
                "vexpenses.jwt_secret (VEXPENSES_JWT_SECRET) is too weak for production: "
                "use a random string of 32 characters or more."
            )
    elif not secret:
        settings["vexpenses.jwt_secret"] = DEVELOPMENT_SECRET


# -- Plugins' settings ------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    """One plugin setting, ``vexpenses.<plugin>.<name>`` in the ini file.

    ``default`` is written as in the ini file. ``parse`` turns the value,
    stripped, into what the plugin uses, or raises ``ValueError`` whose message
    is the rule, e.g. ``"must be a number of at least 1"``; a parser with a
    message of another shape raises :class:`ConfigurationError` itself.
    ``env`` names the environment variable when it is not
    ``VEXPENSES_<PLUGIN>_<NAME>``, or is ``False`` for an ini-only setting.
    ``rule`` replaces the parser's rule in the message. A ``secret`` is kept
    as written, spaces included, and never repeated in a message.
    """

    name: str
    default: str
    parse: Callable[[str], object] = str
    env: str | bool | None = None
    rule: str | None = None
    secret: bool = False


class PluginSettings:
    """A plugin's settings, parsed as the core's are.

    Each setting's environment variable, when set (even empty), wins over the
    ini file, which wins over the default. A bad value stops start-up with a
    message naming the setting, its variable and the rule.
    """

    def __init__(self, plugin, *settings):
        self.prefix = f"vexpenses.{plugin}."
        self.settings = {setting.name: setting for setting in settings}
        self.variables = {
            setting.name: None if setting.env is False
            else setting.env or f"VEXPENSES_{plugin}_{setting.name}".upper()
            for setting in settings
        }

    def raw(self, settings, environ=None):
        """``{name: value as given}``: the variable, else the ini file, else the default.

        Values set from code rather than an ini file (a dict, a number) stay as they are.
        """
        environ = os.environ if environ is None else environ
        values = {}
        for name, setting in self.settings.items():
            variable = self.variables[name]
            if variable is not None and variable in environ:
                values[name] = environ[variable]
            else:
                values[name] = settings.get(self.prefix + name, setting.default)
        return values

    def read(self, settings, environ=None, problems=None):
        """``{name: parsed value}``; raises one :class:`ConfigurationError` for the bad ones.

        With ``problems`` (:class:`Problems`), a bad value's message goes there
        instead and its name is left out, so that a plugin's own checks can
        run on the good ones and report their problems too.
        """
        found = Problems() if problems is None else problems
        values = {}
        for name, raw in self.raw(settings, environ).items():
            setting = self.settings[name]
            value = raw.strip() if isinstance(raw, str) and not setting.secret else raw
            try:
                values[name] = setting.parse(value)
            except ValueError as exc:
                shown = "" if setting.secret else f", not {raw!r}"
                found.add(f"{self._describe(name)} {setting.rule or exc}{shown}")
            except ConfigurationError as exc:
                found.add(exc)
        if problems is None:
            found.raise_if_any()
        return values

    def _describe(self, name):
        """``vexpenses.<plugin>.<name> (VARIABLE)``, as messages name a setting."""
        variable = self.variables[name]
        return self.prefix + name + (f" ({variable})" if variable else "")

    def undocumented(self, text):
        """The settings whose name or variable ``text`` (a doc page) does not mention."""
        return [name for name, variable in self.variables.items()
                if f"`{self.prefix}{name}`" not in text
                or (variable is not None and f"`{variable}`" not in text)]


def number(minimum=1, kind=int):
    """A parser for a number of at least ``minimum``."""
    def parse(raw):
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            value = None
        if value is None or value != value or value < minimum:  # value != value: NaN
            whole = "whole number" if kind is int else "number"
            raise ValueError(f"must be a {whole} of at least {minimum}")
        return value
    return parse


def one_of(*choices, fold=False):
    """A parser for one of ``choices``: spelt exactly, or in any case with ``fold``
    (the value is then lower-cased)."""
    def parse(raw):
        value = str(raw).lower() if fold else raw
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value
    return parse


def text(raw):
    """A parser for a string that must not be empty."""
    if not raw:
        raise ValueError("must not be empty")
    return raw
