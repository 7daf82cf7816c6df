import pytest
from vexpenses_csv_import.testing import SMALL

from vexpenses_core.testing import make_user


@pytest.fixture(scope="session")
def vexpenses_plugins():
    return "csv_import"


@pytest.fixture
def app(make_testapp, tmp_path):
    """Small chunks and batches; an uploader, an admin and another user, with tokens."""
    testapp = make_testapp(**{"vexpenses.upload_dir": str(tmp_path / "uploads"), **SMALL})
    registry = testapp.app.registry
    testapp.user_id, testapp.token = make_user(registry, email="ana@example.com")
    _, testapp.admin_token = make_user(registry, email="root@example.com", is_admin=True)
    _, testapp.other_token = make_user(registry, email="bia@example.com")
    return testapp
