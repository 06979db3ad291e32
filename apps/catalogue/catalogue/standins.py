"""Local stand-ins for Twilio and an SMTP server (development, tests).

Nothing leaves the machine in development: the Twilio client is pointed
at :func:`twilio_standin`, an ASGI app that answers Twilio's "create
message" endpoint the way Twilio does, and mail goes to
:class:`SmtpSink`, an SMTP server on loopback (aiosmtpd). Both hand
every message they accept to a ``record`` callback, which the app uses
to fill the outbox.

The Twilio stand-in mimics the magic numbers of Twilio's test
credentials: ``+15005550001`` is refused as an invalid number (error
21211), ``+15005550009`` as a number that cannot receive SMS (21614).
Tests can replace its answer with a ``respond`` hook (a server error,
an answer that never comes).
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from catalogue.privacy import mask_email, mask_phone

__all__ = ["Record", "Respond", "SmtpSink", "twilio_standin"]

_log = logging.getLogger("catalogue.standins")
# aiosmtpd narrates each SMTP conversation at INFO, addresses included;
# the sink logs what it accepted itself, masked.
logging.getLogger("mail.log").setLevel(logging.WARNING)

Record = Callable[[str, str, str, str, str], Awaitable[None]]
"""``record(channel, recipient, sender, subject, body)``."""

Respond = Callable[[dict[str, str]], Awaitable[Response | None]]
"""A test hook: given the form, an answer, or ``None`` for the usual."""

_REFUSED = {
    "+15005550001": (
        21211,
        "The 'To' number is not a valid phone number.",
    ),
    "+15005550009": (
        21614,
        "The 'To' number is not a mobile number.",
    ),
}


def _twilio_error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


def _authorized(request: Request, account_sid: str, auth_token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, password = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return hmac.compare_digest(user, account_sid) and hmac.compare_digest(
        password, auth_token
    )


def twilio_standin(
    account_sid: str,
    auth_token: str,
    record: Record,
    respond: Respond | None = None,
) -> Starlette:
    """An ASGI app that answers Twilio's Messages endpoint.

    Mount it where ``CATALOGUE_TWILIO_BASE_URL`` points: requests come
    in as ``POST /2010-04-01/Accounts/{sid}/Messages.json``.

    Args:
        account_sid, auth_token: the credentials it accepts.
        record: called with each message it accepts.
        respond: a test hook that may answer instead.
    """

    async def create_message(request: Request) -> Response:
        sid = request.path_params["sid"]
        if sid != account_sid or not _authorized(
            request, account_sid, auth_token
        ):
            return _twilio_error(401, 20003, "Authenticate")
        form = {k: str(v) for k, v in (await request.form()).items()}
        if respond is not None:
            answer = await respond(form)
            if answer is not None:
                return answer
        to, sender = form.get("To", ""), form.get("From", "")
        body = form.get("Body", "")
        if not to or not body:
            return _twilio_error(
                400, 21604, "A 'To' phone number is required."
            )
        if to in _REFUSED:
            code, message = _REFUSED[to]
            return _twilio_error(400, code, message)
        await record("sms", to, sender, "", body)
        _log.info(
            "stand-in accepted an SMS to %s",
            mask_phone(to),
            extra={"event": "standin.sms"},
        )
        now = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return JSONResponse(
            {
                "sid": "SM" + secrets.token_hex(16),
                "account_sid": account_sid,
                "to": to,
                "from": sender,
                "body": body,
                "status": "queued",
                "num_segments": "1",
                "direction": "outbound-api",
                "date_created": now,
                "date_updated": now,
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{sid}/Messages.json",
            },
            status_code=201,
        )

    route = Route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        create_message,
        methods=["POST"],
    )
    return Starlette(routes=[route])


class _SinkHandler:
    def __init__(self, record: Record) -> None:
        self.record = record

    async def handle_DATA(  # noqa: N802 - the name aiosmtpd calls
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        part = parsed.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        sender = envelope.mail_from or ""
        for recipient in envelope.rcpt_tos:
            await self.record(
                "email", recipient, sender, str(parsed["Subject"] or ""), body
            )
            _log.info(
                "SMTP sink accepted an email to %s",
                mask_email(recipient),
                extra={"event": "standin.email"},
            )
        return "250 Message accepted for delivery"


class SmtpSink:
    """An SMTP server on loopback that keeps what it receives.

    Args:
        record: called for each recipient of each message.
        host, port: where to listen; port 0 picks a free one.
    """

    def __init__(self, record: Record, host: str, port: int) -> None:
        self.handler = _SinkHandler(record)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; ``port`` holds the actual port afterwards.

        Raises:
            OSError: the address is taken.
        """
        loop = asyncio.get_running_loop()

        def protocol() -> Any:
            return SMTP(self.handler, hostname="localhost", loop=loop)

        self._server = await loop.create_server(protocol, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close open conversations."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
