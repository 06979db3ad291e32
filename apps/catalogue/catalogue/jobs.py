"""The catalogue's job functions: SMS, email and the CSV export.

Each is a method of a *runner class*. The web process runs its job
server with :class:`CatalogueActivator`, which hands every runner the
process's :class:`~catalogue.services.Services`, one scope per job. A
separate worker (``backburner worker --import catalogue.jobs``) uses
backburner's default activator, which builds runners with no
arguments: they then open one shared :class:`Services` from the same
environment (``CATALOGUE_*``, ``BACKBURNER_STORAGE``) on first use and
keep it until the process ends.

Delivery is at least once: a job interrupted by a shutdown runs again
after the restart. The runners make that harmless by recording what
they did: a message with ``sent_at`` set is not sent again. What stays
open is the moment between the provider accepting a message and that
record being written: a crash exactly there sends the message twice.

When Twilio answers 429 or 503 with a ``Retry-After`` header, the SMS
job asks to be retried after that many seconds (at most five minutes,
see :mod:`catalogue.retry_after`) instead of its usual delay.

``CATALOGUE_SMS_RETRY_DELAY`` (seconds, default 30) overrides the delay
between SMS and email attempts, for tests that cannot wait 30 s; it is
read when this module is imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import smtplib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import encode_basic_auth
from sqlalchemy import func, select

# twilio ships no type information.
from twilio.base.exceptions import (  # type: ignore[import-untyped]
    TwilioRestException,
)
from twilio.http.async_http_client import (  # type: ignore[import-untyped]
    AsyncTwilioHttpClient,
)
from twilio.rest import Client as TwilioClient  # type: ignore[import-untyped]

from backburner import CancellationToken, OperationCancelled
from backburner.jobs import Activator, JobContext, RetryAfter, retry
from catalogue.models import Category, Export, Message, Product, utc_now
from catalogue.privacy import mask_email, mask_phone
from catalogue.retry_after import BUSY_STATUSES, retry_after_seconds
from catalogue.services import Services
from catalogue.settings import Settings

__all__ = [
    "REJECTED_NUMBER_CODES",
    "SMS_RETRY_DELAY",
    "CatalogueActivator",
    "Exporter",
    "Mailer",
    "SmsSender",
]

_log = logging.getLogger("catalogue.jobs")
# twilio logs every request and response at INFO, with the account SID;
# its warnings and errors are enough.
logging.getLogger("twilio").setLevel(logging.WARNING)
T = TypeVar("T")

SMS_RETRY_DELAY = float(os.environ.get("CATALOGUE_SMS_RETRY_DELAY", "30"))

# Twilio error codes that say "this number will not take the message":
# invalid number, not a mobile number, the recipient replied STOP, the
# region is not enabled. Retrying cannot help; the user must fix it.
REJECTED_NUMBER_CODES = frozenset({21211, 21408, 21610, 21612, 21614})

_TWILIO_ORIGIN = "https://api.twilio.com"
_EXPORT_BATCH = 50
_CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# -- dependencies -----------------------------------------------------------


class CatalogueActivator(Activator):
    """Gives every runner the process's services, one scope per job."""

    def __init__(self, services: Services) -> None:
        self.services = services

    @contextlib.asynccontextmanager
    async def scope(self, runner_class: type[T]) -> AsyncIterator[T]:
        """Yield ``runner_class(services)``."""
        # Every runner class here takes the services as its argument;
        # the activator's signature cannot say so.
        build: Any = runner_class
        runner: T = build(self.services)
        yield runner


_shared: Services | None = None
_shared_lock = asyncio.Lock()


async def _shared_services() -> Services:
    """The services of a worker process that has no activator of ours."""
    global _shared
    async with _shared_lock:
        if _shared is None:
            _shared = await Services.open(Settings.from_environment())
        return _shared


class _Runner:
    def __init__(self, services: Services | None = None) -> None:
        self._given = services

    async def services(self) -> Services:
        return self._given or await _shared_services()


class _TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Twilio's async HTTP client, optionally sending to another origin.

    The Twilio client builds absolute ``https://api.twilio.com/...``
    URLs; with ``base_url`` this client swaps the origin, so that
    development and tests talk to a local stand-in with the real
    library. It also sends the credentials as a header of its own:
    twilio hands them to aiohttp in a form aiohttp has deprecated.
    """

    def __init__(self, base_url: str | None) -> None:
        super().__init__(timeout=10)
        self.base_url = base_url.rstrip("/") if base_url else None
        # Of the last answer: twilio's exceptions do not carry headers.
        self.retry_after: str | None = None

    async def request(self, method: str, url: str, **kwargs: Any) -> Any:
        if self.base_url and url.startswith(_TWILIO_ORIGIN):
            url = self.base_url + url[len(_TWILIO_ORIGIN) :]
        auth = kwargs.pop("auth", None)
        if auth is not None:
            headers = dict(kwargs.pop("headers", None) or {})
            headers["Authorization"] = encode_basic_auth(*auth)
            kwargs["headers"] = headers
        self.retry_after = None
        response = await super().request(method, url, **kwargs)
        headers = response.headers or {}
        self.retry_after = headers.get("Retry-After")
        return response


@contextlib.asynccontextmanager
async def twilio_client(settings: Settings) -> AsyncIterator[TwilioClient]:
    """A Twilio client for one job, its HTTP session closed afterwards."""
    http = _TwilioHttpClient(settings.twilio_base_url)
    try:
        yield TwilioClient(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            http_client=http,
        )
    finally:
        await http.close()


async def _load_message(
    services: Services, token: CancellationToken, message_id: int
) -> Message | None:
    async with services.db.session(token) as session:
        message = await session.get(Message, message_id)
    if message is None:
        _log.warning(
            "message %d no longer exists; nothing to send",
            message_id,
            extra={"event": "message.missing", "message_id": message_id},
        )
    elif message.sent_at is not None:
        _log.info(
            "message %d was sent already",
            message_id,
            extra={"event": "message.already_sent", "message_id": message_id},
        )
        return None
    return message


async def _record(
    services: Services,
    message_id: int,
    status: str,
    provider_id: str | None = None,
    error: str | None = None,
) -> None:
    # Written whatever the job's token says: the provider has answered,
    # and forgetting that answer would send the message again.
    async with services.db.session(CancellationToken.NONE) as session:
        message = await session.get(Message, message_id)
        if message is None:
            return
        message.status = status
        message.provider_id = provider_id
        message.error = error
        if status == "sent":
            message.sent_at = utc_now()
        await session.commit()


# -- SMS ------------------------------------------------------------------


class SmsSender(_Runner):
    """Sends one stored SMS through Twilio."""

    @retry(attempts=3, delays=[SMS_RETRY_DELAY])
    async def send(self, message_id: int, token: CancellationToken) -> None:
        """Send message ``message_id`` as an SMS.

        A number Twilio rejects (see :data:`REJECTED_NUMBER_CODES`) is
        logged and recorded, and the job ends: retrying cannot help.
        Any other failure is raised, so that the job is retried.
        Cancellation (shutdown, deletion) propagates: the job goes back
        on its queue, or ends, without the message marked as sent.

        Raises:
            RetryAfter: Twilio answered 429 or 503 with a
                ``Retry-After`` header: retried after that (capped).
            TwilioRestException: Twilio refused the request for another
                reason than the number (5xx, credentials...).
            OperationCancelled: the job's token fired.
        """
        services = await self.services()
        message = await _load_message(services, token, message_id)
        if message is None:
            return
        settings = services.settings
        try:
            async with twilio_client(settings) as twilio:
                sent = await _create_sms(twilio, settings, message)
        except TwilioRestException as error:
            if error.code not in REJECTED_NUMBER_CODES:
                raise
            _log.warning(
                "SMS %d to %s rejected by Twilio (%s): not retried",
                message_id,
                mask_phone(message.recipient),
                error.code,
                extra={"event": "sms.rejected", "message_id": message_id},
            )
            await _record(
                services, message_id, "rejected", error=f"{error.code}"
            )
            return
        await _record(services, message_id, "sent", provider_id=sent.sid)
        _log.info(
            "SMS %d sent to %s",
            message_id,
            mask_phone(message.recipient),
            extra={"event": "sms.sent", "message_id": message_id},
        )


async def _create_sms(
    twilio: TwilioClient, settings: Settings, message: Message
) -> Any:
    """Hand ``message`` to Twilio; return Twilio's record of it.

    Raises:
        RetryAfter: Twilio is busy (429, 503) and said for how long.
        TwilioRestException: any other refusal.
    """
    try:
        return await twilio.messages.create_async(
            to=message.recipient,
            from_=settings.twilio_from,
            body=message.body,
        )
    except TwilioRestException as error:
        if error.status not in BUSY_STATUSES:
            raise
        http: _TwilioHttpClient = twilio.http_client
        wait = retry_after_seconds(http.retry_after, datetime.now(UTC))
        if wait is None:
            # No usable Retry-After: the policy's delay applies.
            raise
        _log.warning(
            "Twilio answered %d for message %d: retrying in %g s",
            error.status,
            message.id,
            wait,
            extra={"event": "sms.provider_busy", "message_id": message.id},
        )
        raise RetryAfter(wait, f"Twilio answered {error.status}") from error


# -- email ---------------------------------------------------------------


class Mailer(_Runner):
    """Sends one stored email over SMTP."""

    @retry(attempts=3, delays=[SMS_RETRY_DELAY])
    async def send(self, message_id: int, token: CancellationToken) -> None:
        """Send message ``message_id`` as an email.

        A recipient the SMTP server refuses is logged and recorded, not
        retried. The SMTP conversation runs in a thread (smtplib); if
        the token fires meanwhile the job stops waiting for it, and the
        thread finishes its conversation on its own.

        Raises:
            smtplib.SMTPException, OSError: the server failed (retried).
            OperationCancelled: the job's token fired.
        """
        services = await self.services()
        message = await _load_message(services, token, message_id)
        if message is None:
            return
        try:
            await asyncio.to_thread(_deliver, services.settings, message)
        except smtplib.SMTPRecipientsRefused:
            _log.warning(
                "email %d to %s refused by the SMTP server: not retried",
                message_id,
                mask_email(message.recipient),
                extra={"event": "email.rejected", "message_id": message_id},
            )
            await _record(services, message_id, "rejected", error="refused")
            return
        await _record(services, message_id, "sent")
        _log.info(
            "email %d sent to %s",
            message_id,
            mask_email(message.recipient),
            extra={"event": "email.sent", "message_id": message_id},
        )


def _deliver(settings: Settings, message: Message) -> None:
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email.set_content(message.body)
    with smtplib.SMTP(
        settings.smtp_host, settings.smtp_port, timeout=10
    ) as smtp:
        smtp.send_message(email)


# -- export --------------------------------------------------------------


def _cell(value: object) -> str:
    text = str(value)
    # A spreadsheet would run a cell that starts like a formula.
    if text.startswith(_CSV_FORMULA_START):
        return "'" + text
    return text


class Exporter(_Runner):
    """Writes the catalogue to a CSV file, reporting its progress."""

    # A failed export is shown as failed; the user starts a new one.
    @retry(attempts=1)
    async def export(self, export_id: str, context: JobContext) -> None:
        """Write every product of the catalogue to ``<export_id>.csv``.

        Progress is reported through the job's context, where both the
        app's export page and the dashboard read it. The file is
        written under a temporary name and renamed when complete, so a
        download never sees half a file.

        Raises:
            OperationCancelled: the job's token fired; the export is
                marked ``cancelled`` (deleted) or ``queued`` (it runs
                again after a restart).
            OSError: the file could not be written; the export is
                marked ``failed`` (and the job fails, without retries).
        """
        services = await self.services()
        try:
            await self._write(services, export_id, context)
        except OperationCancelled as stop:
            status = "queued" if stop.reason == "shutdown" else "cancelled"
            await self._update(services, export_id, status=status)
            raise
        except Exception:
            await self._update(services, export_id, status="failed")
            raise
        finally:
            # Only a complete export keeps its file (renamed from this).
            _partial_file(services, export_id).unlink(missing_ok=True)

    async def _write(
        self, services: Services, export_id: str, context: JobContext
    ) -> None:
        token = context.token
        async with services.db.session(token) as session:
            total = await session.scalar(select(func.count(Product.id)))
        total = total or 0
        await self._update(services, export_id, status="running")
        context.report_progress(0, f"0 of {total} products")

        folder = services.settings.exports_dir
        folder.mkdir(parents=True, exist_ok=True)
        partial = _partial_file(services, export_id)
        written, last_id = 0, 0
        with partial.open("w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(["id", "name", "price", "category", "description"])
            while True:
                batch = await _product_batch(services, token, last_id)
                if not batch:
                    break
                for row in batch:
                    writer.writerow([_cell(value) for value in row])
                written += len(batch)
                last_id = int(batch[-1][0])
                context.report_progress(
                    min(written / max(total, 1), 1.0),
                    f"{written} of {total} products",
                )
                await _pause(token, services.settings.export_pace)
        partial.replace(folder / f"{export_id}.csv")
        await self._update(
            services,
            export_id,
            status="done",
            progress=100,
            rows=written,
            finished=True,
        )
        _log.info(
            "export %s done: %d products",
            export_id,
            written,
            extra={"event": "export.done", "export_id": export_id},
        )

    async def _update(
        self,
        services: Services,
        export_id: str,
        *,
        status: str | None = None,
        progress: int | None = None,
        rows: int | None = None,
        finished: bool = False,
    ) -> None:
        async with services.db.session(CancellationToken.NONE) as session:
            export = await session.get(Export, export_id)
            if export is None:
                return
            if status is not None:
                export.status = status
            if progress is not None:
                export.progress = progress
            if rows is not None:
                export.rows = rows
            if finished:
                export.finished_at = utc_now()
            await session.commit()


def _partial_file(services: Services, export_id: str) -> Path:
    return services.settings.exports_dir / f"{export_id}.csv.part"


async def _product_batch(
    services: Services, token: CancellationToken, after_id: int
) -> list[tuple[Any, ...]]:
    # Keyset pagination: each batch is an index range scan, however far
    # into the catalogue the export is.
    query = (
        select(
            Product.id,
            Product.name,
            Product.price_cents,
            Category.name,
            Product.description,
        )
        .outerjoin(Category, Category.id == Product.category_id)
        .where(Product.id > after_id)
        .order_by(Product.id)
        .limit(_EXPORT_BATCH)
    )
    async with services.db.session(token) as session:
        rows = (await session.execute(query)).all()
    return [
        (pid, name, f"{cents / 100:.2f}", category or "", description)
        for pid, name, cents, category, description in rows
    ]


async def _pause(token: CancellationToken, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(token.wait(), seconds)
    token.raise_if_cancellation_requested()
