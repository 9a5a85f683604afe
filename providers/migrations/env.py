"""Alembic environment: runs our migrations on the engine that providers.db hands over."""

from alembic import context

from providers.models import Base

config = context.config
target_metadata = Base.metadata

engine = config.attributes.get("engine")
if engine is None:  # plain `alembic` command line: use the same default URL
    from providers.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or None)

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
