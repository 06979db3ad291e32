"""The job dashboard: a mountable ASGI app to watch and steer jobs.

::

    from backburner.dashboard import Access, create_dashboard

    dashboard = create_dashboard(client, authorize=may_manage_jobs)
    app.mount("/jobs", dashboard)          # FastAPI, Starlette, ...

or on its own: ``backburner dashboard --port 8080``.

Pages: overview (counts, live and history graphs), jobs by state with
queue and function filters, job details, retries, recurring jobs,
servers. Actions: requeue, delete and run now, for one job or a
selection; trigger now, pause, resume and remove for a recurring job.
It reads and acts only through :class:`~backburner.jobs.Client`, like
application code; it has no SQL of its own.

Safe by default: with no ``authorize`` hook only loopback requests are
served; every action needs a CSRF token; the Content-Security-Policy
allows no inline script or style; job data is always escaped.
``docs/dashboard.md`` is the guide.
"""

from __future__ import annotations

from backburner.dashboard.app import create_dashboard
from backburner.dashboard.auth import Access, Authorize, loopback_only
from backburner.dashboard.calls import HIDDEN, ArgumentMask

__all__ = [
    "HIDDEN",
    "Access",
    "ArgumentMask",
    "Authorize",
    "create_dashboard",
    "loopback_only",
]
