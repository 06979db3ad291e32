"""The development outbox: what the local stand-ins received.

In development the SMS stand-in and the SMTP sink record every message
here, and a signed-in user can read the ones addressed to their own
phone number and email address (``GET /api/outbox``). In production the
route does not exist.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import or_, select

from backburner import CancellationToken
from backburner.web.fastapi import RequestCancellation
from catalogue.database import Database
from catalogue.identity import CurrentUser, ServicesDep
from catalogue.models import OutboxEntry, utc_now
from catalogue.standins import Record

__all__ = ["outbox_recorder", "router"]

router = APIRouter(prefix="/api/outbox", tags=["outbox"])


def outbox_recorder(db: Database) -> Record:
    """A ``record`` callback for the stand-ins that writes the outbox."""

    async def record(
        channel: str, recipient: str, sender: str, subject: str, body: str
    ) -> None:
        # The stand-in has accepted the message: keep it, whatever.
        async with db.session(CancellationToken.NONE) as session:
            session.add(
                OutboxEntry(
                    channel=channel,
                    recipient=recipient,
                    sender=sender,
                    subject=subject,
                    body=body,
                    received_at=utc_now(),
                )
            )
            await session.commit()

    return record


@router.get("")
async def my_outbox(
    user: CurrentUser, services: ServicesDep, token: RequestCancellation
) -> list[dict[str, Any]]:
    """Messages the stand-ins received for the signed-in user."""
    query = (
        select(OutboxEntry)
        .where(
            or_(
                OutboxEntry.recipient == user.phone,
                OutboxEntry.recipient == user.email,
            )
        )
        .order_by(OutboxEntry.id.desc())
        .limit(50)
    )
    async with services.db.session(token) as session:
        entries = (await session.scalars(query)).all()
    return [
        {
            "id": entry.id,
            "channel": entry.channel,
            "recipient": entry.recipient,
            "sender": entry.sender,
            "subject": entry.subject,
            "body": entry.body,
            "received_at": entry.received_at.isoformat() + "Z",
        }
        for entry in entries
    ]
