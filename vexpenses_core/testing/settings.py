"""Settings every test app starts from."""

import os
import uuid

MYSQL_URL = os.environ.get("VEXPENSES_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("VEXPENSES_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"


def base_settings(database_url, plugins="", **overrides):
    run_id = uuid.uuid4().hex
    settings = {
        "vexpenses.env": "testing",
        "vexpenses.database_url": database_url,
        "vexpenses.redis_url": "",
        "vexpenses.plugins": plugins,
        "vexpenses.jwt_secret": JWT_SECRET,
        "vexpenses.base_url": "http://localhost",
        # Unique per app, so test runs and tests can share one Redis.
        "vexpenses.redis_prefix": f"test:{run_id}:",
        "vexpenses.tasks.queue": f"test:{run_id}:tasks",
        "vexpenses.tasks.redelivery_seconds": "2",
        # Cheap hashing: the tests hash many passwords, not defend against GPUs.
        "vexpenses.argon2.time_cost": "1",
        "vexpenses.argon2.memory_cost": "8192",
        "vexpenses.argon2.parallelism": "1",
        # Tests register many users from one address; the limit's own tests lower it.
        "vexpenses.ratelimit.register_ip": "10000 per minute",
    }
    settings.update(overrides)
    return settings
