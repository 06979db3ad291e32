"""Alembic migrations of the catalogue's schema (run at start-up)."""
