"""The SMS and email job runners against local stand-ins on loopback.

The real twilio library sends to the Twilio stand-in served by uvicorn
on 127.0.0.1; a hook decides each answer. The retry delay is shortened
by ``CATALOGUE_SMS_RETRY_DELAY`` (set in ``conftest.py`` before the app
is imported), so that three attempts take a fraction of a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from backburner import CancellationToken
from backburner.jobs import Client, JobId, JobState, Server
from catalogue.jobs import SMS_RETRY_DELAY, CatalogueActivator
from catalogue.messaging import MailService, PhoneService
from catalogue.models import Message, OutboxEntry
from catalogue.outbox import outbox_recorder
from catalogue.services import Services
from catalogue.settings import Settings
from catalogue.standins import SmtpSink, twilio_standin

from .serving import serve

pytestmark = pytest.mark.timeout(60)

NONE = CancellationToken.NONE
PHONE = "+14155550123"


class TwilioScript:
    """What the stand-in answers, and what it was asked."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.answer: Response | None = None
        # Answered, in order, before ``answer``.
        self.first_answers: list[Response] = []
        self.hang_first = False
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()

    async def respond(self, form: dict[str, str]) -> Response | None:
        self.requests.append(form)
        self.arrived.set()
        if self.hang_first and len(self.requests) == 1:
            await self.release.wait()  # no answer while the test runs
        if self.first_answers:
            return self.first_answers.pop(0)
        return self.answer


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def script(
    services: Services,
) -> AsyncIterator[TwilioScript]:
    script = TwilioScript()
    settings = services.settings
    standin = twilio_standin(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        outbox_recorder(services.db),
        script.respond,
    )
    async with serve(standin) as url:
        services.settings = dataclasses.replace(settings, twilio_base_url=url)
        yield script
        script.release.set()  # a hung request ends with the test


def job_server(services: Services, **tuning: Any) -> Server:
    return Server(
        services.storage,
        activator=CatalogueActivator(services),
        concurrency=2,
        poll_interval=0.05,
        promote_interval=0.05,
        **tuning,
    )


async def until_state(client: Client, job_id: JobId, *states: JobState) -> Any:
    # The job's state lives in storage; look until it is one of these.
    while True:
        job = await client.get(job_id)
        if job.state in states:
            return job
        await asyncio.sleep(0.05)


async def message(services: Services, message_id: int = 1) -> Message:
    async with services.db.session(NONE) as session:
        found = await session.get(Message, message_id)
    assert found is not None
    return found


def server_error() -> Response:
    return JSONResponse(
        {"code": 20500, "message": "Internal Server Error", "status": 500},
        status_code=500,
    )


async def test_an_sms_is_sent_once_through_the_twilio_library(
    services: Services, script: TwilioScript
) -> None:
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "hi\n@h #1")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
    assert job.attempt == 1
    assert script.requests == [
        {
            "To": PHONE,
            "From": services.settings.twilio_from,
            "Body": "hi\n@h #1",
        }
    ]
    sent = await message(services)
    assert sent.status == "sent"
    assert sent.provider_id is not None
    assert sent.provider_id.startswith("SM")
    async with services.db.session(NONE) as session:
        outbox = (await session.scalars(select(OutboxEntry))).all()
    assert [(o.channel, o.recipient) for o in outbox] == [("sms", PHONE)]


async def test_a_rejected_number_is_logged_and_not_retried(
    services: Services,
    script: TwilioScript,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    rejected = "+15005550001"
    job_id = await PhoneService(services).send_sms(NONE, rejected, "x")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
    assert job.attempt == 1
    assert len(script.requests) == 1
    assert (await message(services)).status == "rejected"
    [record] = [r for r in caplog.records if "rejected" in r.message]
    assert "21211" in record.message
    assert "not retried" in record.message
    # The number is masked in every log line.
    assert all(rejected not in r.getMessage() for r in caplog.records)


async def test_a_server_error_is_retried_three_times_then_fails(
    services: Services, script: TwilioScript
) -> None:
    script.answer = server_error()
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "x")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.FAILED
        )
    assert job.attempt == 3
    assert len(script.requests) == 3
    retries = [h for h in job.history if h.state == JobState.SCHEDULED]
    assert len(retries) == 2
    for entry in retries:
        assert "TwilioRestException" in entry.reason
    assert (await message(services)).sent_at is None


def busy(status: int, retry_after: str | None) -> Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return JSONResponse(
        {"code": 20429, "message": "Too Many Requests", "status": status},
        status_code=status,
        headers=headers,
    )


@pytest.mark.parametrize("status", [429, 503])
async def test_a_busy_twilio_is_tried_again_after_its_retry_after(
    services: Services, script: TwilioScript, status: int
) -> None:
    script.first_answers = [busy(status, "1")]
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "x")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
    assert job.attempt == 2
    assert len(script.requests) == 2
    [retried] = [h for h in job.history if h.state == JobState.SCHEDULED]
    assert retried.reason == (
        f"retry 2 of 3: the job asked to retry after 1 s: "
        f"Twilio answered {status}"
    )
    assert retried.data["retry_delay"] == 1.0
    # The header's second, not the policy's 0.1 s.
    second = [h for h in job.history if h.state == JobState.PROCESSING][1]
    assert (second.at - retried.at).total_seconds() >= 1.0
    assert (await message(services)).status == "sent"


async def test_a_busy_twilio_is_scheduled_for_its_retry_after(
    services: Services, script: TwilioScript
) -> None:
    script.answer = busy(429, "120")
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "x")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.SCHEDULED
        )
    assert job.scheduled_at is not None
    [retried] = [h for h in job.history if h.state == JobState.SCHEDULED]
    waited = (job.scheduled_at - retried.at).total_seconds()
    assert abs(waited - 120) < 0.001
    assert len(script.requests) == 1
    assert (await message(services)).sent_at is None


async def test_a_busy_twilio_without_retry_after_gets_the_usual_delay(
    services: Services, script: TwilioScript
) -> None:
    script.first_answers = [busy(429, None), busy(503, "soon")]
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "x")
    async with job_server(services):
        job = await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
    assert job.attempt == 3
    retries = [h for h in job.history if h.state == JobState.SCHEDULED]
    assert [h.data["exception_type"] for h in retries] == [
        "twilio.base.exceptions.TwilioRestException"
    ] * 2
    assert all("retry_delay" not in h.data for h in retries)


def test_the_retry_delay_is_shortened_for_tests_only() -> None:
    # conftest.py sets the override; production reads no variable and
    # waits 30 s (see catalogue.jobs).
    assert SMS_RETRY_DELAY < 1


async def test_an_sms_interrupted_by_shutdown_is_sent_once_after_restart(
    services: Services, script: TwilioScript
) -> None:
    script.hang_first = True
    job_id = JobId(
        int(await PhoneService(services).send_sms(NONE, PHONE, "x"))
    )
    async with job_server(services, shutdown_grace=0.1, interrupt_delay=0.1):
        await script.arrived.wait()
    # Shut down mid-send: back on the queue, neither sent nor failed.
    job = await services.client.get(job_id)
    assert job.state == JobState.ENQUEUED
    assert (await message(services)).sent_at is None

    async with job_server(services):
        job = await until_state(services.client, job_id, JobState.SUCCEEDED)
    assert len(script.requests) == 2  # the hung one, and the real send
    async with services.db.session(NONE) as session:
        outbox = (await session.scalars(select(OutboxEntry))).all()
    assert len(outbox) == 1  # delivered once
    assert (await message(services)).status == "sent"


async def test_an_email_goes_out_over_smtp_to_the_sink(
    services: Services,
) -> None:
    sink = SmtpSink(
        outbox_recorder(services.db), "127.0.0.1", services.settings.smtp_port
    )
    await sink.start()
    try:
        job_id = await MailService(services).send_mail(
            NONE, "ann@example.com", "Your code", "Code: 123456"
        )
        async with job_server(services):
            await until_state(
                services.client, JobId(int(job_id)), JobState.SUCCEEDED
            )
    finally:
        await sink.stop()
    async with services.db.session(NONE) as session:
        [entry] = (await session.scalars(select(OutboxEntry))).all()
    assert (entry.channel, entry.recipient) == ("email", "ann@example.com")
    assert entry.subject == "Your code"
    assert entry.body.strip() == "Code: 123456"
    assert (await message(services)).status == "sent"


async def test_a_message_sent_already_is_not_sent_again(
    services: Services, script: TwilioScript
) -> None:
    job_id = await PhoneService(services).send_sms(NONE, PHONE, "x")
    async with job_server(services):
        await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
        # The same job again, as after a crash between send and record.
        await services.client.requeue(JobId(int(job_id)))
        await until_state(
            services.client, JobId(int(job_id)), JobState.SUCCEEDED
        )
    assert len(script.requests) == 1
