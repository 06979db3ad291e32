"""Phone and email confirmation with short-lived codes.

A code has six digits, lives two minutes (``code_lifetime``), allows
five wrong tries, and only its keyed hash is stored. A user gets a new
code at most every 30 seconds per channel (``code_interval``): asking
sooner answers 429 with ``Retry-After``. A new code replaces the old.

The SMS ends with a Web OTP line (``@host #123456``), so a browser that
supports the WebOTP API can offer the code to the page by itself.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import field_validator
from sqlalchemy import select, update

from backburner import CancellationToken
from backburner.web import shielded
from backburner.web.fastapi import RequestCancellation
from catalogue.errors import ApiError
from catalogue.forms import Form
from catalogue.identity import CurrentUser, ServicesDep, user_view
from catalogue.messaging import MailService, PhoneService
from catalogue.models import Code, User, utc_now
from catalogue.services import Services

__all__ = ["Channel", "router", "send_code", "sms_text"]

Channel = Literal["sms", "email"]
MAX_FAILED_TRIES = 5

router = APIRouter(prefix="/api/me", tags=["confirmation"])


def _hash(services: Services, user_id: int, channel: str, code: str) -> str:
    key = services.settings.secret_key.encode()
    text = f"{user_id}:{channel}:{code}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


def sms_text(code: str, host: str) -> str:
    """The confirmation SMS; its last line is in the Web OTP format."""
    return f"Your catalogue code is {code}.\n\n@{host} #{code}"


async def send_code(
    services: Services,
    token: CancellationToken,
    user: User,
    channel: Channel,
) -> dict[str, Any]:
    """Make a new code for ``user`` and send it on ``channel``.

    Raises:
        ApiError: 429 when the previous code is younger than the
            interval, or 409 when the channel is confirmed already.
        OperationCancelled: ``token`` fired before the code was stored.
    """
    settings = services.settings
    confirmed = (
        user.phone_confirmed_at
        if channel == "sms"
        else user.email_confirmed_at
    )
    if confirmed is not None:
        raise ApiError(409, f"your {_noun(channel)} is confirmed already")
    now = utc_now()
    code = f"{secrets.randbelow(1_000_000):06d}"
    async with services.db.session(token) as session:
        latest = await session.scalar(
            select(Code.created_at)
            .where(Code.user_id == user.id, Code.channel == channel)
            .order_by(Code.created_at.desc())
            .limit(1)
        )
    if latest is not None:
        wait = settings.code_interval - (now - latest).total_seconds()
        if wait > 0:
            seconds = math.ceil(wait)
            raise ApiError(
                429,
                f"wait {seconds} s before asking for another code",
                headers={"Retry-After": str(seconds)},
            )
    # From here on the code is stored and sent even if the browser
    # leaves: a stored code that never went out would only block the
    # next request for half a minute.
    async with shielded():
        await _store_code(services, user.id, channel, code, now)
        await _deliver(services, user, channel, code)
    return {"expires_in": settings.code_lifetime}


async def _store_code(
    services: Services,
    user_id: int,
    channel: Channel,
    code: str,
    now: datetime,
) -> None:
    lifetime = timedelta(seconds=services.settings.code_lifetime)
    async with services.db.writing() as session:
        # The newest code replaces the older ones.
        await session.execute(
            update(Code)
            .where(
                Code.user_id == user_id,
                Code.channel == channel,
                Code.used_at.is_(None),
            )
            .values(used_at=now)
        )
        session.add(
            Code(
                user_id=user_id,
                channel=channel,
                code_hash=_hash(services, user_id, channel, code),
                created_at=now,
                expires_at=now + lifetime,
                failed_tries=0,
            )
        )
        await session.commit()


async def _deliver(
    services: Services, user: User, channel: Channel, code: str
) -> None:
    settings = services.settings
    unbound = CancellationToken.NONE  # begun: the message goes out
    if channel == "sms":
        text = sms_text(code, settings.otp_host)
        await PhoneService(services).send_sms(unbound, user.phone, text)
    else:
        text = (
            f"Your catalogue code is {code}. It is valid for "
            f"{int(settings.code_lifetime // 60)} minutes."
        )
        await MailService(services).send_mail(
            unbound, user.email, "Confirm your email address", text
        )


class CodeForm(Form):
    """A code typed in by the user."""

    code: str

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        value = value.strip()
        if len(value) != 6 or not value.isdigit():
            raise ValueError("the code has six digits")
        return value


def _noun(channel: Channel) -> str:
    return "phone number" if channel == "sms" else "email address"


async def confirm(
    services: Services,
    token: CancellationToken,
    user_id: int,
    channel: Channel,
    typed: str,
) -> User:
    """Check ``typed`` against the user's live code; confirm on a match.

    Raises:
        ApiError: 400 for a wrong, expired or used-up code.
        OperationCancelled: ``token`` fired.
    """
    now = utc_now()
    token.raise_if_cancellation_requested()
    # Checking and recording a try is one short write that finishes
    # once begun: a wrong try is counted even if the browser has left.
    async with services.db.writing() as session:
        code = await session.scalar(
            select(Code)
            .where(
                Code.user_id == user_id,
                Code.channel == channel,
                Code.used_at.is_(None),
            )
            .order_by(Code.created_at.desc())
            .limit(1)
        )
        if code is None:
            # Say why: a second click on "confirm" sends a used code.
            latest = await session.scalar(
                select(Code.used_at)
                .where(Code.user_id == user_id, Code.channel == channel)
                .order_by(Code.created_at.desc())
                .limit(1)
            )
            if latest is not None:
                raise ApiError(
                    400,
                    "this code was used already",
                    {"code": "this code was used already; ask for a new one"},
                )
        if code is None or code.expires_at <= now:
            raise ApiError(
                400,
                "this code has expired",
                {"code": "the code has expired; ask for a new one"},
            )
        if code.failed_tries >= MAX_FAILED_TRIES:
            raise ApiError(
                400,
                "too many wrong codes",
                {"code": "too many wrong tries; ask for a new code"},
            )
        expected = _hash(services, user_id, channel, typed)
        if not hmac.compare_digest(code.code_hash, expected):
            code.failed_tries += 1
            await session.commit()
            raise ApiError(
                400, "wrong code", {"code": "this is not the code we sent"}
            )
        code.used_at = now
        user = await session.get(User, user_id)
        assert user is not None  # the code's foreign key holds it
        if channel == "sms":
            user.phone_confirmed_at = now
        else:
            user.email_confirmed_at = now
        await session.commit()
    return user


@router.post("/phone/code", status_code=202)
async def send_phone_code(
    user: CurrentUser, services: ServicesDep, token: RequestCancellation
) -> dict[str, Any]:
    """Send a new code to the user's phone."""
    return await send_code(services, token, user, "sms")


@router.post("/phone/confirm")
async def confirm_phone(
    form: CodeForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Confirm the phone number with the code from the SMS."""
    confirmed = await confirm(services, token, user.id, "sms", form.code)
    return user_view(confirmed)


@router.post("/email/code", status_code=202)
async def send_email_code(
    user: CurrentUser, services: ServicesDep, token: RequestCancellation
) -> dict[str, Any]:
    """Send a new code to the user's email address."""
    return await send_code(services, token, user, "email")


@router.post("/email/confirm")
async def confirm_email(
    form: CodeForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Confirm the email address with the code from the email."""
    confirmed = await confirm(services, token, user.id, "email", form.code)
    return user_view(confirmed)
