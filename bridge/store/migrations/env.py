"""Alembic environment: runs on the connection that `bridge.store.database.migrate` passes."""

from __future__ import annotations

from alembic import context

from bridge.store.schema import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through bridge.store.database.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
