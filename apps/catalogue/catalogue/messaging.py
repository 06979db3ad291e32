"""The phone and mail services: they enqueue messages, jobs send them.

A request that wants an SMS or an email sent stores the message and
enqueues a job with the message's id (:mod:`catalogue.jobs` has the
runners). The request returns at once; the job retries when the
provider fails, and survives a restart of the server.

Both steps run shielded from the request's cancellation: a browser
that leaves after the message was stored still gets its job, rather
than a message that waits forever. If the job storage itself fails
after the message was stored, the message stays ``pending`` and the
user asks for a new code (it is a confirmation code, so nothing of
value is lost).
"""

from __future__ import annotations

import logging

from backburner import CancellationToken
from backburner.web import shielded
from catalogue.jobs import Mailer, SmsSender
from catalogue.models import Message, utc_now
from catalogue.privacy import mask_email, mask_phone
from catalogue.services import Services

__all__ = ["MailService", "PhoneService"]

_log = logging.getLogger("catalogue.messaging")


async def _store(services: Services, message: Message) -> int:
    async with services.db.writing() as session:
        session.add(message)
        await session.commit()
    return message.id


class PhoneService:
    """Sends SMS through a retried job (:class:`~catalogue.jobs.SmsSender`)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def send_sms(
        self, token: CancellationToken, to: str, text: str
    ) -> str:
        """Store the SMS and enqueue its job; return the job id.

        Raises:
            OperationCancelled: ``token`` fired before the SMS was stored.
            StorageError: the job could not be stored.
        """
        message = Message(
            channel="sms", recipient=to, body=text, created_at=utc_now()
        )
        token.raise_if_cancellation_requested()
        async with shielded():
            message_id = await _store(self.services, message)
            job_id = await self.services.client.enqueue(
                SmsSender.send, message_id
            )
        _log.info(
            "SMS %d to %s enqueued as job %s",
            message_id,
            mask_phone(to),
            job_id,
            extra={"event": "sms.enqueued", "job_id": job_id},
        )
        return str(job_id)


class MailService:
    """Sends email through a retried job (:class:`~catalogue.jobs.Mailer`)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def send_mail(
        self, token: CancellationToken, to: str, subject: str, text: str
    ) -> str:
        """Store the email and enqueue its job; return the job id.

        Raises:
            OperationCancelled: ``token`` fired before it was stored.
            StorageError: the job could not be stored.
        """
        message = Message(
            channel="email",
            recipient=to,
            subject=subject,
            body=text,
            created_at=utc_now(),
        )
        token.raise_if_cancellation_requested()
        async with shielded():
            message_id = await _store(self.services, message)
            job_id = await self.services.client.enqueue(
                Mailer.send, message_id
            )
        _log.info(
            "email %d to %s enqueued as job %s",
            message_id,
            mask_email(to),
            job_id,
            extra={"event": "email.enqueued", "job_id": job_id},
        )
        return str(job_id)
