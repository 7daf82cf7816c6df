"""Smoke test of the built wheels, run by .ci/run in a venv holding only them.

Run it from a directory outside the source tree so that nothing is imported
from the checkout: every file it touches (migrations, Swagger UI assets, the
plugin's migration) must have shipped in a wheel.
"""

import os
import pathlib
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent

INI = """\
[app:main]
use = egg:{egg}

vexpenses.env = development
vexpenses.database_url = sqlite:///%(here)s/var/smoke.sqlite
vexpenses.redis_url =
vexpenses.plugins = hello
vexpenses.base_url = http://localhost:6543
vexpenses.upload_dir = %(here)s/var/uploads
vexpenses.auto_migrate = true

[server:main]
use = egg:waitress#main
listen = localhost:6543

[loggers]
keys = root, vexpenses

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console

[logger_vexpenses]
level = INFO
handlers =
qualname = vexpenses_core

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)-5.5s [%(name)s][%(request_id)s] %(message)s
"""


def check(what, condition, detail=""):
    if not condition:
        sys.exit(f"smoke: FAILED: {what}{': ' + str(detail)[:2000] if detail else ''}")
    print(f"smoke: ok: {what}")


def not_from_checkout(module):
    path = pathlib.Path(module.__file__).resolve()
    check(f"{module.__name__} is imported from the installed wheel ({path.parent})",
          not path.is_relative_to(REPO), path)


def write_ini(directory, egg):
    path = directory / f"{egg}.ini"
    path.write_text(INI.format(egg=egg))
    return str(path)


def check_app(ini):
    import webtest
    from pyramid.paster import get_app

    app = get_app(ini)
    testapp = webtest.TestApp(app)

    res = testapp.get("/api/v1/openapi.json", status=200)
    paths = res.json.get("paths", {})
    check("GET /api/v1/openapi.json lists the hello plugin's route",
          "/api/v1/hello/greetings" in paths, sorted(paths))

    res = testapp.get("/api/v1/docs", status=200)
    check("GET /api/v1/docs is an HTML page", res.content_type == "text/html", res.content_type)

    res = testapp.get("/api/v1/docs/static/swagger-ui-bundle.js", status=200)
    check("Swagger UI's bundle shipped in the wheel", len(res.body) > 100_000, len(res.body))

    res = testapp.get("/reset-password", status=200)
    check("GET /reset-password is the page from the shipped template",
          res.content_type == "text/html" and "reset-password.js" in res.text, res.text[:500])
    res = testapp.get("/vexpenses-static/reset-password.js", status=200)
    check("the reset page's script shipped in the wheel", len(res.body) > 0)

    res = testapp.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    greeting_id = res.json["data"]["id"]
    check("POST /api/v1/hello/greetings queued a greeting", greeting_id, res.json)

    check("the in-process task finished", app.registry.queue.drain(timeout=30))
    res = testapp.get(f"/api/v1/hello/greetings/{greeting_id}", status=200)
    message = res.json["data"]["message"]
    check("the task ran on the plugin's migrated table", message == "Hello, Ana!", message)
    app.registry.queue.close()


def check_host_app(directory):
    """The example host app, when its wheel was installed too."""
    try:
        import host_app
    except ImportError:
        print("smoke: skip: examples/host_app is not installed")
        return
    import webtest
    from pyramid.paster import get_app

    not_from_checkout(host_app)
    ini = write_ini(directory, "vexpenses-example-host")
    app = get_app(ini)
    testapp = webtest.TestApp(app)
    res = testapp.get("/", status=200)
    check("the host app answers its own route", res.json == {"app": "host"}, res.json)
    res = testapp.get("/api/v1/openapi.json", status=200)
    check("the host app serves vexpenses with the hello plugin",
          "/api/v1/hello/greetings" in res.json["paths"])
    app.registry.queue.close()


def run_cli(*args):
    script = pathlib.Path(sys.executable).parent / "vexpenses"
    return subprocess.run([str(script), *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def check_cli(ini):
    res = run_cli("--help")
    check("`vexpenses --help` runs", res.returncode == 0, res.stderr)
    for command in ("migrate", "worker", "hello-count"):
        check(f"`vexpenses --help` lists {command}", command in res.stdout, res.stdout)

    res = run_cli("migrate", ini)
    check("`vexpenses migrate` succeeds", res.returncode == 0, res.stdout + res.stderr)
    check("`vexpenses migrate` logs cleanly", "Logging error" not in res.stderr, res.stderr)

    res = run_cli("hello-count", ini)
    check("`vexpenses hello-count` sees the greeting",
          res.returncode == 0 and "1 greetings" in res.stdout, res.stdout + res.stderr)


def main():
    # Settings come from the ini alone, whatever the CI environment holds.
    for name in list(os.environ):
        if name.startswith("VEXPENSES_"):
            del os.environ[name]

    import vexpenses_hello

    import vexpenses_core

    not_from_checkout(vexpenses_core)
    not_from_checkout(vexpenses_hello)

    with tempfile.TemporaryDirectory(prefix="vexpenses-smoke-") as tmp:
        directory = pathlib.Path(tmp)
        ini = write_ini(directory, "vexpenses-core")
        check_app(ini)
        check_cli(ini)
        check_host_app(directory)

    print("smoke: ok")


if __name__ == "__main__":
    main()
