"""Cross-site request forgery protection for the dashboard's actions.

Double-submit token: the first page a browser gets sets a random token
in a cookie (``HttpOnly``, ``SameSite=Strict``, limited to the
dashboard's path) and every form carries the same token in a hidden
field. An action is refused unless both are present and equal. Another
site can make a browser send the cookie (not even that, with
``SameSite=Strict``) but cannot read it to fill in the field.

As a second, independent check an action is refused when the browser
says it comes from another site (``Sec-Fetch-Site: cross-site``) or from
another origin (an ``Origin`` header that is not the dashboard's own).
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["COOKIE", "FIELD", "check", "issue", "token_of"]

COOKIE = "backburner_csrf"
FIELD = "csrf"
_TOKEN_BYTES = 32
_STATE_KEY = "backburner_csrf_new"


def _cookie_path(request: Request) -> str:
    return request.scope.get("root_path", "") or "/"


def token_of(request: Request) -> str:
    """The request's token: the cookie's, or a new one to be issued.

    A new token is remembered on the request so that :func:`issue` sets
    the cookie on the response.
    """
    current = request.cookies.get(COOKIE, "")
    if _well_formed(current):
        return current
    fresh: str | None = getattr(request.state, _STATE_KEY, None)
    if fresh is None:
        fresh = secrets.token_urlsafe(_TOKEN_BYTES)
        setattr(request.state, _STATE_KEY, fresh)
    return fresh


def issue(request: Request, response: Response) -> None:
    """Set the cookie on ``response`` if :func:`token_of` made a token."""
    fresh: str | None = getattr(request.state, _STATE_KEY, None)
    if fresh is None:
        return
    response.set_cookie(
        COOKIE,
        fresh,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _well_formed(token: str) -> bool:
    return 32 <= len(token) <= 128 and token.isascii()


def _same_origin(request: Request) -> bool:
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        # Browsers send "null" from sandboxed and privacy-sensitive
        # contexts; the token check alone decides for those.
        return origin is None
    own = f"{request.url.scheme}://{request.url.netloc}"
    return origin == own


def check(request: Request, submitted: object) -> bool:
    """Whether an action with form token ``submitted`` may go ahead."""
    cookie = request.cookies.get(COOKIE, "")
    if not isinstance(submitted, str) or not _well_formed(cookie):
        return False
    if not _same_origin(request):
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())
