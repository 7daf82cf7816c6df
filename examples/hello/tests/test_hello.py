import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from vexpenses_core.testing import write_ini

VEXPENSES = str(Path(sys.executable).with_name("vexpenses"))


def test_greeting_is_completed_by_its_task(testapp):
    res = testapp.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert testapp.app.registry.queue.drain(10)  # wait for in-process tasks
    greeting = testapp.get(f"/api/v1/hello/greetings/{res.json['data']['id']}").json
    assert greeting["data"]["message"] == "Hello, Ana!"


def test_a_name_is_required(testapp):
    res = testapp.post_json("/api/v1/hello/greetings", {"name": " "}, status=422)
    assert res.json["errors"] == {"name": ["The name field is required."]}


def test_an_unknown_greeting_is_404(testapp):
    testapp.get("/api/v1/hello/greetings/999999", status=404)


def test_the_table_is_migrated(testapp):
    tables = sa.inspect(testapp.app.registry.dbengine).get_table_names()
    assert "hello_greetings" in tables


def test_openapi_has_the_plugin_paths(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/hello/greetings" in paths


def test_plugin_disabled_means_no_route(make_testapp):
    app = make_testapp(**{"vexpenses.plugins": ""})
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=404)


def test_the_command_counts_greetings(testapp, tmp_path):
    testapp.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    settings = testapp.app.registry.settings
    env = {**os.environ, "VEXPENSES_DATABASE_URL": settings["vexpenses.database_url"],
           "VEXPENSES_PLUGINS": "hello"}
    result = subprocess.run([VEXPENSES, "hello-count", str(write_ini(tmp_path))],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1 greetings\n"
