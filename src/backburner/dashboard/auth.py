"""Who may open the dashboard, and who may act on jobs.

Authorization is a callable given to
:func:`~backburner.dashboard.create_dashboard`: it receives the
Starlette :class:`~starlette.requests.Request` and returns an
:class:`Access` (directly or as an awaitable). Every request, pages,
JSON and static files alike, goes through it first:

- ``Access(user=None, allowed=False)``: anonymous and refused: 401.
- ``Access(user="bob", allowed=False)``: signed in but refused: 403.
- ``Access(user="alice", allowed=True, read_only=True)``: may look,
  may not act (the action buttons are hidden and actions answer 403).

With no callable configured, :func:`loopback_only` applies: a request
is served only when it comes from a loopback address *and* carries no
proxy header. A reverse proxy on the same machine makes every visitor
look local, so a request that names a forwarded client is refused; put
a real authorization callable in front of a proxied dashboard.
"""

from __future__ import annotations

import inspect
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeAlias

from starlette.requests import Request

__all__ = [
    "Access",
    "Authorize",
    "actor_of",
    "decide",
    "is_loopback",
    "loopback_only",
]

_PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


@dataclass(frozen=True, slots=True)
class Access:
    """What one request may do.

    Attributes:
        user: who is signed in, or ``None`` for an anonymous request.
            It is recorded in the history of every job the user acts on.
        allowed: whether the dashboard is served at all.
        read_only: whether actions (requeue, delete, run now) are
            refused and hidden.
    """

    user: str | None
    allowed: bool
    read_only: bool = False


Authorize: TypeAlias = Callable[[Request], Access | Awaitable[Access]]
"""The authorization hook: a request in, an :class:`Access` out."""


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is a loopback IP address (``127.0.0.0/8``, ``::1``)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_only(request: Request) -> Access:
    """The default authorization: serve loopback callers, anonymously.

    A request carrying ``Forwarded``, ``X-Forwarded-For`` or
    ``X-Real-IP`` is refused even from loopback: it came through a proxy
    and its real origin is unknown.
    """
    host = request.client.host if request.client else None
    proxied = any(name in request.headers for name in _PROXY_HEADERS)
    return Access(user=None, allowed=is_loopback(host) and not proxied)


async def decide(authorize: Authorize, request: Request) -> Access:
    """Run the hook, awaiting it if it returned an awaitable.

    Raises:
        TypeError: the hook returned something other than an
            :class:`Access` (a bug in the hook, reported loudly rather
            than read as "allowed").
    """
    access = authorize(request)
    if inspect.isawaitable(access):
        access = await access
    if not isinstance(access, Access):
        raise TypeError(
            "the dashboard's authorize hook must return an Access, not "
            f"{type(access).__name__}"
        )
    return access


def actor_of(access: Access, request: Request) -> str:
    """The name recorded in job history for an action by this request."""
    if access.user:
        return access.user
    host = request.client.host if request.client else "unknown"
    return f"anonymous ({host})"
