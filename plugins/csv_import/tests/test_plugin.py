"""Wiring: hookspecs, settings, includeme, OpenAPI, the command's help."""

import inspect
import pathlib

import pytest
from pyramid.config import Configurator
from vexpenses_csv_import import hookspecs
from vexpenses_csv_import.settings import SETTINGS, read_settings

from vexpenses_core.settings import ConfigurationError
from vexpenses_core.testing import base_settings

ROOT = pathlib.Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "csv_import.md").read_text()
SPECS = {name: fn for name, fn in vars(hookspecs).items() if name.startswith("vexpenses_")}
AGREED = {
    "vexpenses_import_uploaded": ["request", "import_id"],
    "vexpenses_import_viewed": ["request", "import_id"],
    "vexpenses_import_started": ["request", "import_id", "uploader_id"],
    "vexpenses_import_chunk_done": ["request", "import_id", "chunk_index", "counts"],
    "vexpenses_users_imported": ["request", "import_id", "user_ids", "send_invitations"],
    "vexpenses_import_finished": ["request", "import_id", "uploader_id", "status", "counts",
                                  "send_invitations"],
}


def test_hookspecs_are_the_agreed_contract():
    assert {name: list(inspect.signature(fn).parameters) for name, fn in SPECS.items()} == AGREED
    for name, fn in SPECS.items():
        assert "worker" in fn.__doc__ or "request" in fn.__doc__, name


def test_every_setting_is_documented():
    assert SETTINGS.undocumented(DOC) == []


def test_settings_env_wins_and_bad_values_stop_start_up():
    assert read_settings({}, {})["chunk_bytes"] == 1024 * 1024
    options = read_settings({"vexpenses.csv_import.batch_rows": "50"},
                            {"VEXPENSES_CSV_IMPORT_BATCH_ROWS": "70"})
    assert options["batch_rows"] == 70
    for bad in ("0", "-1", "lots", ""):
        with pytest.raises(ConfigurationError, match="batch_rows"):
            read_settings({"vexpenses.csv_import.batch_rows": bad}, {})
    with pytest.raises(ConfigurationError, match="storage"):
        read_settings({}, {"VEXPENSES_CSV_IMPORT_STORAGE": " "})


def test_includeme_twice_registers_once(tmp_path, environ_clean):
    settings = base_settings(f"sqlite:///{tmp_path}/x.sqlite", "csv_import")
    with Configurator(settings=settings) as config:
        config.include("vexpenses_core")
        first = config.registry.csv_import_options
        config.include("vexpenses_csv_import")
    assert config.registry.csv_import_options is first
    config.registry.queue.close()


def test_openapi_lists_the_import_routes(testapp):
    paths = testapp.get("/api/v1/openapi.json").json["paths"]
    assert "post" in paths["/api/v1/user/upload"]
    assert set(paths["/api/v1/user/import-status/{id}"]) == {"get", "delete"}
    assert "get" in paths["/api/v1/user/import-status/{id}/errors"]


def test_command_is_listed():
    from vexpenses_core.cli import make_parser

    assert "import" in make_parser().format_help()
