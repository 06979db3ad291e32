"""What one dashboard instance was configured with, and where to find it.

Pages read the settings from the Starlette application they belong to
(``request.app.state``), and the access granted to the request from
the ASGI scope, where the guard put it.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from backburner.dashboard.auth import Access, Authorize
from backburner.dashboard.calls import ArgumentMask
from backburner.jobs.client import Client

__all__ = ["ACCESS_KEY", "Settings", "access_of", "settings_of"]

ACCESS_KEY = "backburner.dashboard.access"


@dataclass(frozen=True, slots=True)
class Settings:
    """The options of :func:`~backburner.dashboard.create_dashboard`."""

    client: Client
    authorize: Authorize
    read_only: bool
    mask: ArgumentMask | None
    title: str
    page_size: int
    server_silence: float
    scan_limit: int


def settings_of(request: Request) -> Settings:
    """The settings of the dashboard serving ``request``."""
    settings: Settings = request.app.state.backburner_dashboard
    return settings


def access_of(request: Request) -> Access:
    """The access the guard granted to ``request``."""
    access: Access = request.scope[ACCESS_KEY]
    return access
