"""Alembic environment: migrate over the connection the app hands in.

The app runs the migrations itself at start-up
(:func:`catalogue.database.migrate`), on a connection of its own async
engine; ``alembic`` on the command line is not needed.
"""

from __future__ import annotations

from alembic import context

from catalogue.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run the catalogue's migrations through catalogue.database.migrate"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
