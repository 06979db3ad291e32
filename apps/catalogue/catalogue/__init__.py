"""The backburner reference application: a small product catalogue.

A FastAPI app that shows backburner in a realistic shape: every API
route obeys its request's cancellation token down to the database,
sign-up confirmation codes go out as SMS and email through retried
background jobs, a long export reports its progress, and the job
dashboard is mounted at ``/jobs`` for users allowed to manage jobs.

``python -m catalogue`` serves it (``make demo``); ``create_app`` builds
it for tests or another server. ``docs/reference-app.md`` is the guide.
"""

from __future__ import annotations

from catalogue.app import create_app
from catalogue.settings import Settings

__all__ = ["Settings", "create_app"]
