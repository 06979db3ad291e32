"""Sign-up: create the account, sign it in, send both codes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from backburner.web.fastapi import RequestCancellation
from catalogue.confirmation import send_code
from catalogue.identity import (
    ServicesDep,
    SignUp,
    create_user,
    issue_token,
    set_session_cookie,
    user_view,
)

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["identity"])


@router.post("/auth/signup", status_code=201)
async def sign_up(
    form: SignUp,
    response: Response,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Create an account, sign it in and send both confirmation codes.

    The codes go out through jobs; if the browser leaves before they
    are stored, the account exists and the user asks for new codes on
    the confirmation page.
    """
    user = await create_user(services, token, form)
    session_token = issue_token(services, user)
    set_session_cookie(response, services, session_token)
    await send_code(services, token, user, "sms")
    await send_code(services, token, user, "email")
    return {"user": user_view(user), "token": session_token}
