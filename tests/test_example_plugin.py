"""The third-party example plugin works through the same machinery as real plugins:
its route, hookimpls, task (in-process here; by a real worker in test_worker.py)
and migration."""

import sqlalchemy as sa
from alembic.script import ScriptDirectory

from vexpenses_core.migrate import alembic_config, pending_revisions


def test_route_and_in_process_task(testapp):
    res = testapp.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=201)
    assert res.json["status"] is True
    greeting_id = res.json["data"]["id"]
    assert testapp.app.registry.queue.drain(10)
    res = testapp.get(f"/api/v1/hello/greetings/{greeting_id}")
    assert res.json["data"]["message"] == "Hello, Ana!"
    assert res.json["data"]["greeted_at"].endswith("Z")


def test_in_process_task_keeps_the_request_id(standin_app):
    testapp = standin_app
    res = testapp.post_json("/api/v1/standin/greetings", {"name": "Ana"},
                            headers={"X-Request-ID": "req-42"})
    assert testapp.app.registry.queue.drain(10)
    from vexpenses_core.redis_client import redis_key

    registry = testapp.app.registry
    key = redis_key(registry, "standin", "request", res.json["data"]["id"])
    assert registry.redis.get(key) == b"req-42"


def test_validation_error_in_envelope(testapp):
    res = testapp.post_json("/api/v1/hello/greetings", {"name": ""}, status=422)
    assert res.json == {
        "status": False,
        "message": "The given data was invalid.",
        "errors": {"name": ["The name field is required."]},
    }


def test_unknown_greeting_is_404(testapp):
    testapp.get("/api/v1/hello/greetings/999999", status=404)
    testapp.get("/api/v1/hello/greetings/abc", status=404)


def test_migration_created_plugin_table(testapp):
    registry = testapp.app.registry
    tables = sa.inspect(registry.dbengine).get_table_names()
    assert {"users", "hello_greetings"} <= set(tables)
    # the database is at the head of every branch: the core's and the plugin's
    script = ScriptDirectory.from_config(alembic_config(registry))
    revisions = {r.revision for r in script.walk_revisions()}
    assert {"core_0001", "core_0002", "hello_0001"} <= revisions
    assert pending_revisions(registry) == set()


def test_app_created_hook_ran(standin_app):
    assert standin_app.app.registry.standin_ready is True


def test_openapi_includes_plugin_paths(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/hello/greetings" in paths
    assert "/api/v1/plugins" in paths


def test_plugin_disabled_means_no_route(make_testapp):
    app = make_testapp(**{"vexpenses.plugins": ""})
    app.post_json("/api/v1/hello/greetings", {"name": "Ana"}, status=404)
    paths = app.get("/api/v1/openapi.json").json["paths"]
    assert "/api/v1/hello/greetings" not in paths


def test_hello_needs_no_hook_to_point_at_its_folders(testapp):
    """A route, a table, a task and a command: four hooks, none about folders."""
    from vexpenses_core.migrate import plugin_locations

    pm = testapp.app.registry.pm
    hooks = {caller.name for caller in pm.get_hookcallers(pm.get_plugin("hello"))}
    assert hooks == {"vexpenses_includeme", "vexpenses_tasks", "vexpenses_add_commands",
                     "vexpenses_openapi"}
    [folder] = plugin_locations(pm)["hello"]
    assert folder.endswith("vexpenses_hello/migrations")


class EntryPoint:
    """Stands in for an installed plugin's entry point."""

    def __init__(self, module):
        self.module, self.dist = module, None

    def load(self):
        return self.module


def folder_plugin(tmp_path, name):
    """A plugin package with migrations/ and static/ beside its module, loaded from tmp_path."""
    import importlib.util

    package = tmp_path / name
    (package / "migrations").mkdir(parents=True)
    (package / "static").mkdir()
    (package / "static" / "page.css").write_text("body {}")
    (tmp_path / "elsewhere").mkdir()
    (package / "__init__.py").write_text(
        "from vexpenses_core import hookimpl\n\n\n"
        "@hookimpl\n"
        "def vexpenses_migration_locations():\n"
        f"    return [{str(tmp_path / 'elsewhere')!r}, {str(package / 'migrations')!r}]\n"
    )
    spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                  submodule_search_locations=[str(package)])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_folders_by_convention_and_the_hook_for_other_layouts(tmp_path, monkeypatch):
    """migrations/ and static/ beside the module are found; vexpenses_migration_locations
    adds folders elsewhere, and naming the conventional one again does not repeat it."""
    import sys

    import webtest
    from pyramid.config import Configurator

    from vexpenses_core.migrate import plugin_locations
    from vexpenses_core.plugins import add_static_views, build_plugin_manager

    module = folder_plugin(tmp_path, "vexpenses_folders")
    monkeypatch.setitem(sys.modules, "vexpenses_folders", module)
    pm = build_plugin_manager(["folders"], installed={"folders": EntryPoint(module)})
    assert plugin_locations(pm) == {"folders": [str(tmp_path / "vexpenses_folders" / "migrations"),
                                                str(tmp_path / "elsewhere")]}
    config = Configurator()
    add_static_views(config, pm)
    app = webtest.TestApp(config.make_wsgi_app())
    assert app.get("/static/folders/page.css").text == "body {}"
