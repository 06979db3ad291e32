"""Table upkeep: fresh statistics and vacuumed queue tables.

The hot statements (fetch, outcomes, enqueue) are prepared once per
connection, and PostgreSQL keeps a prepared statement's generic plan
until something invalidates it, such as an ``ANALYZE`` of a table it
reads. A plan made while ``jobs`` held a hundred rows scans the whole
table, which is cheapest at that size, and keeps doing so when the
table holds a million: each fetch then costs more than the one before.
Autovacuum's analyze normally refreshes the statistics (and so the
plans) as the tables grow; where it is off, or far behind, nothing
does, and a server under steady load falls further behind every minute.

So every server asks, now and then, whether any table of the schema has
changed by more than autovacuum's own analyze threshold since its last
analyze, and analyzes those tables; small tables whose rows come and go
all the time (the queue, the counters, the server rows) are vacuumed
too when their dead rows pile up. Where autovacuum keeps up this finds
nothing to do. Big tables are never vacuumed here: that is autovacuum's
work, and a long one. One server at a time does it (a session advisory
lock per schema), the rest skip the round; only tables the connecting
role owns are touched, and a table busy with another vacuum or analyze
is skipped rather than waited for.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

logger = logging.getLogger("backburner.storage")

# First key of the session advisory lock that lets one server at a time
# tend a schema's tables (the second is the schema's hash).
_UPKEEP_LOCK = 0x6276
# Autovacuum's default analyze threshold: 50 rows plus 10 % of the table.
_ANALYZE_BASE = 50
_ANALYZE_SCALE = 0.1
# Small tables with constant churn, vacuumed once this many rows are dead
# (job_queue's own autovacuum setting, see migration 0001).
_SMALL_TABLES = frozenset(
    {"job_queue", "job_counters", "job_outcomes", "servers"}
)
_VACUUM_DEAD_ROWS = 1000
# Where autovacuum runs, step in only when it is this far behind: it
# normally gets there within its naptime (a minute), and two analyzes
# of the same table would be twice the work for nothing.
_BEHIND_AUTOVACUUM = 4
# A vacuum or analyze that would wait for another one skips the table.
_LOCK_TIMEOUT = "1s"

_TABLE_STATS = b"""
SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       pg_has_role(c.relowner, 'USAGE'),
       current_setting('autovacuum')::boolean
       AND NOT EXISTS (
           SELECT FROM unnest(c.reloptions) AS o (option)
           WHERE split_part(o.option, '=', 1) = 'autovacuum_enabled'
             AND NOT split_part(o.option, '=', 2)::boolean)
FROM pg_stat_user_tables AS s
JOIN pg_class AS c ON c.oid = s.relid
WHERE s.schemaname = %(schema)s
ORDER BY s.relname
"""


@dataclass(frozen=True, slots=True)
class Tended:
    """What one round of upkeep did and found (table names).

    ``not_owned``: tables that wanted care, which the connecting role
    may not analyze or vacuum (not their owner). ``unattended``: tables
    that autovacuum does not look after (off on the server, or for the
    table).
    """

    analyzed: tuple[str, ...] = ()
    vacuumed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    not_owned: tuple[str, ...] = ()
    unattended: tuple[str, ...] = ()


def due(
    table: str, live: int, dead: int, changed: int, autovacuum: bool = False
) -> tuple[bool, bool]:
    """Whether ``table`` wants an analyze, and a vacuum.

    ``autovacuum``: autovacuum looks after the table; then only a table
    it has left far behind is due.
    """
    factor = _BEHIND_AUTOVACUUM if autovacuum else 1
    threshold = _ANALYZE_BASE + _ANALYZE_SCALE * max(live, 0)
    analyze = changed > threshold * factor
    vacuum = table in _SMALL_TABLES and dead > _VACUUM_DEAD_ROWS * factor
    return analyze, vacuum


async def tend(conn: psycopg.AsyncConnection[TupleRow], schema: str) -> Tended:
    """Analyze and vacuum the tables of ``schema`` that need it.

    ``conn`` must be in autocommit mode (``VACUUM`` cannot run in a
    transaction). Returns what was done; nothing when another server
    holds the upkeep lock.
    """
    locked = await conn.execute(
        b"SELECT pg_try_advisory_lock(%(class)s, hashtext(%(schema)s))",
        {"class": _UPKEEP_LOCK, "schema": schema},
    )
    row = await locked.fetchone()
    if row is None or not row[0]:
        return Tended()
    try:
        await conn.execute(
            sql.SQL("SET lock_timeout = {}").format(sql.Literal(_LOCK_TIMEOUT))
        )
        cursor = await conn.execute(_TABLE_STATS, {"schema": schema})
        stats = await cursor.fetchall()
        analyzed: list[str] = []
        vacuumed: list[str] = []
        skipped: list[str] = []
        not_owned: list[str] = []
        unattended: list[str] = []
        for row in stats:
            name = str(row[0])
            live, dead, changed = (int(value or 0) for value in row[1:4])
            owned, autovacuum = bool(row[4]), bool(row[5])
            if not autovacuum:
                unattended.append(name)
            analyze, vacuum = due(name, live, dead, changed, autovacuum)
            if not (analyze or vacuum):
                continue
            if not owned:
                not_owned.append(name)
                continue
            table = sql.Identifier(schema, name)
            if vacuum:
                statement = sql.SQL("VACUUM (ANALYZE) {}").format(table)
            else:
                statement = sql.SQL("ANALYZE {}").format(table)
            try:
                await conn.execute(statement)
            except psycopg.errors.LockNotAvailable:
                skipped.append(name)
                continue
            if vacuum:
                vacuumed.append(name)
            analyzed.append(name)
        return Tended(
            tuple(analyzed),
            tuple(vacuumed),
            tuple(skipped),
            tuple(not_owned),
            tuple(unattended),
        )
    finally:
        await conn.execute(b"RESET lock_timeout")
        await conn.execute(
            b"SELECT pg_advisory_unlock(%(class)s, hashtext(%(schema)s))",
            {"class": _UPKEEP_LOCK, "schema": schema},
        )


class Reporter:
    """Logs what upkeep rounds did, and each standing problem once."""

    def __init__(self, schema: str) -> None:
        self._schema = schema
        self._told: set[str] = set()

    def round(self, done: Tended, seconds: float) -> None:
        """Log one round: DEBUG when it did something, a WARNING the first
        time autovacuum is found off, or tables are found out of reach."""
        if done.unattended and "unattended" not in self._told:
            self._told.add("unattended")
            logger.warning(
                "autovacuum is off for %s in schema %s: backburner "
                "analyzes those tables (and vacuums the small busy ones) "
                "itself, but dead rows of jobs and job_history are only "
                "reclaimed by a vacuum; turn autovacuum on",
                ", ".join(done.unattended),
                self._schema,
                extra={"event": "storage.autovacuum_off"},
            )
        if done.not_owned and "not_owned" not in self._told:
            self._told.add("not_owned")
            logger.warning(
                "tables of schema %s need an analyze that this role may "
                "not run (only their owner may): %s; turn autovacuum on, "
                "or run upkeep as the owner",
                self._schema,
                ", ".join(done.not_owned),
                extra={"event": "storage.upkeep_not_owner"},
            )
        if not (done.analyzed or done.skipped):
            return
        logger.debug(
            "tables tended in %.0f ms: analyzed %s; vacuumed %s; skipped %s",
            seconds * 1000,
            ", ".join(done.analyzed) or "none",
            ", ".join(done.vacuumed) or "none",
            ", ".join(done.skipped) or "none",
            extra={
                "event": "storage.tables_tended",
                "duration_ms": round(seconds * 1000, 1),
            },
        )
