"""Alembic environment: run by ``vexpenses migrate`` with the app's engine."""

from alembic import context

from vexpenses_core.db import metadata

config = context.config


def run_migrations_online():
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            # `vexpenses revision` compares only the tables of the branch it writes
            include_object=config.attributes.get("include_object"),
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("vexpenses migrations run online only: use `vexpenses migrate CONFIG`.")
run_migrations_online()
