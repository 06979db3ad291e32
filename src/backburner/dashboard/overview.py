"""The overview: counts per state, live throughput, history graphs.

The live graph asks ``/api/stats`` every two seconds for the counters
and draws the growth of *succeeded* and *failed* per second between two
answers. Counters are state counts, not running totals: a succeeded job
that expires or is requeued leaves the count, so a second in which many
jobs expired shows as zero rather than negative. The graph is a gauge
of activity, not an audit.

The history graph (per hour and per day) reads the totals storage keeps
as jobs finish (:meth:`~backburner.jobs.Client.outcome_history`):
those are never taken back, so they are exact where the live graph is
a gauge.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backburner.dashboard.rendering import render
from backburner.dashboard.settings import settings_of

__all__ = ["routes"]


async def overview(request: Request) -> Response:
    """The overview page."""
    client = settings_of(request).client
    counts = await client.counts()
    servers = await client.servers()
    return render(
        request,
        "overview.html",
        {
            "page": "overview",
            "counts": counts.by_state,
            "queues": sorted(counts.by_queue.items()),
            "servers": servers,
            "workers": sum(server.workers for server in servers),
        },
    )


async def stats_api(request: Request) -> Response:
    """``GET /api/stats``: the counters per state, and the time read."""
    counts = await settings_of(request).client.counts()
    return JSONResponse(
        {
            "at": datetime.now(UTC).timestamp(),
            "states": {s.value: n for s, n in counts.by_state.items()},
        }
    )


_HISTORY_PERIODS = {"hour": 48, "day": 30}


async def history_api(request: Request) -> Response:
    """``GET /api/history?unit=hour|day``: succeeded and failed totals.

    The last 48 hours or 30 UTC days, oldest first.
    """
    unit = request.query_params.get("unit", "hour")
    periods = _HISTORY_PERIODS.get(unit)
    if periods is None:
        raise HTTPException(400, "unit must be hour or day")
    client = settings_of(request).client
    history = await client.outcome_history(unit, periods)
    return JSONResponse(
        {
            "available": True,
            "unit": unit,
            "buckets": [
                {
                    "start": period.start.timestamp(),
                    "succeeded": period.succeeded,
                    "failed": period.failed,
                }
                for period in history
            ],
        }
    )


routes = [
    Route("/", overview, name="overview"),
    Route("/api/stats", stats_api, name="stats_api"),
    Route("/api/history", history_api, name="history_api"),
]
