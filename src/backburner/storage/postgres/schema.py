"""Numbered schema migrations, applied once under an advisory lock.

Migrations are the ``NNNN_name.sql`` files next to this module. They run
in order, each in its own transaction with ``search_path`` set to the
storage's schema, and each applied version is recorded in
``schema_version``. A file that holds the line
``-- backburner: no transaction`` runs statement by statement outside a
transaction instead, for ``CREATE INDEX CONCURRENTLY``.

A session advisory lock keyed on the schema makes processes that migrate
at the same moment take turns: the first applies what is missing, the
others then find nothing left to do.
"""

from __future__ import annotations

from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from backburner.storage.base import SchemaError

# A migration file holding this line runs statement by statement outside
# a transaction (for CREATE INDEX CONCURRENTLY on a table in use).
_NO_TRANSACTION = "-- backburner: no transaction"

# First key of the two-key advisory lock: "bb" in ASCII, so that the
# lock is recognisable in pg_locks next to other applications' locks.
LOCK_CLASS = 0x6262


def available() -> list[tuple[int, str]]:
    """Return ``(version, script)`` for every migration file, in order."""
    folder = resources.files("backburner.storage.postgres") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), entry.read_text("utf-8")))
    return sorted(found)


async def _applied(
    conn: psycopg.AsyncConnection[TupleRow], schema: str
) -> int:
    table = sql.Identifier(schema, "schema_version")
    cursor = await conn.execute(
        sql.SQL("SELECT coalesce(max(version), 0) FROM {}").format(table)
    )
    row = await cursor.fetchone()
    return 0 if row is None else int(row[0])


async def migrate(conninfo: str, schema: str) -> list[int]:
    """Bring ``schema`` up to the newest migration; return what was applied.

    Raises:
        SchemaError: the schema was migrated by a newer backburner.
        psycopg.Error: the database refused a statement (the failed
            migration is rolled back; earlier ones stay applied).
    """
    migrations = available()
    latest = migrations[-1][0] if migrations else 0
    conn: psycopg.AsyncConnection[
        tuple[int]
    ] = await psycopg.AsyncConnection.connect(conninfo, autocommit=True)
    async with conn:
        # Held until unlocked below or until the connection ends, so a
        # crashed migrator cannot leave the schema locked.
        await conn.execute(
            "SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, schema)
        )
        try:
            return await _migrate_locked(conn, schema, migrations, latest)
        finally:
            if not conn.closed:
                await conn.execute(
                    "SELECT pg_advisory_unlock(%s, hashtext(%s))",
                    (LOCK_CLASS, schema),
                )


async def _migrate_locked(
    conn: psycopg.AsyncConnection[TupleRow],
    schema: str,
    migrations: list[tuple[int, str]],
    latest: int,
) -> list[int]:
    name = sql.Identifier(schema)
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
    await conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version integer PRIMARY KEY,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        ).format(sql.Identifier(schema, "schema_version"))
    )
    current = await _applied(conn, schema)
    if current > latest:
        raise SchemaError(
            f"schema {schema!r} is at version {current}, newer than this "
            f"backburner knows ({latest}); upgrade backburner"
        )
    applied = []
    for version, script in migrations:
        if version <= current:
            continue
        if _NO_TRANSACTION in script:
            await _run_outside_transaction(conn, schema, script)
        else:
            async with conn.transaction():
                await conn.execute(
                    sql.SQL("SET LOCAL search_path TO {}").format(name)
                )
                await conn.execute(script.encode("utf-8"))
        await conn.execute(
            sql.SQL("INSERT INTO {} (version) VALUES (%s)").format(
                sql.Identifier(schema, "schema_version")
            ),
            (version,),
        )
        applied.append(version)
    return applied


async def _run_outside_transaction(
    conn: psycopg.AsyncConnection[TupleRow], schema: str, script: str
) -> None:
    # CREATE INDEX CONCURRENTLY refuses to run inside a transaction. Such
    # a script must be safe to run again (IF NOT EXISTS): if it fails
    # half-way, its version is not recorded and the next migrate repeats
    # it.
    await conn.execute(
        sql.SQL("SET search_path TO {}").format(sql.Identifier(schema))
    )
    try:
        for statement in script.split(";"):
            if statement.strip():
                await conn.execute(statement.strip().encode("utf-8"))
    finally:
        if not conn.closed:
            await conn.execute("RESET search_path")


async def current_version(
    conn: psycopg.AsyncConnection[TupleRow], schema: str
) -> int:
    """Return the schema's version (0 when it was never migrated)."""
    cursor = await conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL",
        (sql.Identifier(schema, "schema_version").as_string(conn),),
    )
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return 0
    return await _applied(conn, schema)


def latest() -> int:
    """Return the newest version the migration files reach."""
    migrations = available()
    return migrations[-1][0] if migrations else 0
