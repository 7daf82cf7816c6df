"""`vexpenses revision PLUGIN -m MESSAGE` writes a migration on the plugin's branch,
from the difference between the plugin's models and the database."""

import os
import pathlib
import subprocess
import sys

import sqlalchemy as sa

from vexpenses_core.testing import write_ini

VEXPENSES = str(pathlib.Path(sys.executable).with_name("vexpenses"))

PLUGIN = '''
from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vexpenses_core import Base, hookimpl


class Item(Base):
    __tablename__ = "revplug_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    note: Mapped[str | None] = mapped_column(String(200))  # not in 0001: the change


@hookimpl
def vexpenses_tasks():
    return []
'''

FIRST = '''
import sqlalchemy as sa
from alembic import op

revision = "revplug_0001"
down_revision = None
branch_labels = ("revplug",)
depends_on = "core_0001"


def upgrade():
    op.create_table(
        "revplug_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revplug_items")),
    )


def downgrade():
    op.drop_table("revplug_items")
'''


def stand_in_plugin(folder):
    """An installed plugin ``revplug`` (a .dist-info on PYTHONPATH) whose model has
    a column its migrations do not."""
    dist = folder / "vexpenses_revplug-0.1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vexpenses-revplug\n"
                                   "Version: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[vexpenses.plugins]\nrevplug = vexpenses_revplug\n")
    package = folder / "vexpenses_revplug"
    (package / "migrations").mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN)
    (package / "migrations" / "revplug_0001_items.py").write_text(FIRST)
    return package / "migrations"


def test_revision_writes_the_plugins_change_on_its_branch(tmp_path):
    migrations = stand_in_plugin(tmp_path / "site")
    db = tmp_path / "rev.sqlite"
    env = {**os.environ, "VEXPENSES_DATABASE_URL": f"sqlite:///{db}",
           "VEXPENSES_PLUGINS": "revplug", "VEXPENSES_AUTO_MIGRATE": "false",
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"),
                                          os.environ.get("PYTHONPATH", "")])}
    ini = str(write_ini(tmp_path))

    def run(*args):
        result = subprocess.run([VEXPENSES, *args], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    run("migrate", ini)
    out = run("revision", "revplug", "-m", "items get a note", "--config", ini)
    written = migrations / "revplug_0002_items_get_a_note.py"
    assert f"wrote {written}" in out
    text = written.read_text()
    assert 'revision = "revplug_0002"' in text or "revision = 'revplug_0002'" in text
    assert "revplug_0001" in text  # down_revision: the branch's head
    assert "'note'" in text or '"note"' in text
    assert "users" not in text  # only the plugin's own tables are compared

    run("migrate", ini)
    columns = sa.inspect(sa.create_engine(f"sqlite:///{db}")).get_columns("revplug_items")
    assert "note" in {column["name"] for column in columns}


def test_revision_refuses_a_plugin_that_is_not_enabled(tmp_path):
    env = {**os.environ, "VEXPENSES_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
           "VEXPENSES_PLUGINS": ""}
    result = subprocess.run([VEXPENSES, "revision", "hello", "-m", "x", "-c",
                             str(write_ini(tmp_path))],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "'hello' has no migrations here" in result.stderr
