"""The dashboard's outer layer: authorization and security headers.

Pure ASGI, in front of every route (pages, JSON, static files): the
authorization hook runs before anything is read from storage, and every
response, refusals and errors included, carries a strict
Content-Security-Policy (scripts, styles and data only from the
dashboard itself, nothing inline) and headers that keep it out of
frames and caches.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backburner.dashboard.auth import Access, Authorize, decide
from backburner.dashboard.settings import ACCESS_KEY

__all__ = ["CONTENT_SECURITY_POLICY", "Guard"]

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class Guard:
    """ASGI middleware: authorize the request, add security headers.

    Args:
        app: the dashboard's router.
        authorize: the authorization hook.
        read_only: refuse actions to everyone, whatever the hook says.
    """

    def __init__(
        self, app: ASGIApp, authorize: Authorize, read_only: bool
    ) -> None:
        self.app = app
        self.authorize = authorize
        self.read_only = read_only

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Serve ``scope`` if the hook allows it; refuse it otherwise."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in _HEADERS if h[0] not in names),
                ]
            await send(message)

        access = await decide(self.authorize, Request(scope))
        if not access.allowed:
            status = 401 if access.user is None else 403
            text = "sign in to open the job dashboard"
            if status == 403:
                text = "you may not open the job dashboard"
            refusal = PlainTextResponse(text, status_code=status)
            await refusal(scope, receive, send_with_headers)
            return

        scope[ACCESS_KEY] = Access(
            access.user, True, access.read_only or self.read_only
        )
        await self.app(scope, receive, send_with_headers)
