"""Jobs run by a separate ``backburner worker --import catalogue.jobs``.

The web side (here: the test, through the app's services) enqueues; a
worker process started the way the docs say runs the job with the
default activator, reading its settings from the same environment.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from backburner import CancellationToken
from backburner.jobs import JobId, JobState
from catalogue.messaging import PhoneService
from catalogue.outbox import outbox_recorder
from catalogue.services import Services
from catalogue.settings import Settings
from catalogue.standins import twilio_standin

from .conftest import SECRET
from .serving import serve
from .test_jobs import TwilioScript, until_state

# A fresh interpreter importing the app takes several seconds.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

BACKBURNER = Path(sys.executable).parent / "backburner"
APP_DIR = Path(__file__).resolve().parents[2] / "apps" / "catalogue"


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


async def test_a_separate_worker_sends_the_sms(
    services: Services, settings: Settings
) -> None:
    script = TwilioScript()
    standin = twilio_standin(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        outbox_recorder(services.db),
        script.respond,
    )
    async with serve(standin) as url:
        env = {
            **os.environ,
            "PYTHONPATH": str(APP_DIR),
            "CATALOGUE_DATA_DIR": str(settings.data_dir),
            "CATALOGUE_SECRET_KEY": SECRET,
            "CATALOGUE_TWILIO_BASE_URL": url,
            "BACKBURNER_STORAGE": settings.storage_url,
        }
        worker = await asyncio.create_subprocess_exec(
            str(BACKBURNER),
            "worker",
            "--import",
            "catalogue.jobs",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            services.settings = replace(settings, twilio_base_url=url)
            job_id = await PhoneService(services).send_sms(
                CancellationToken.NONE, "+14155550123", "hello"
            )
            await until_state(
                services.client, JobId(int(job_id)), JobState.SUCCEEDED
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            output, _ = await worker.communicate()
    assert worker.returncode == 0, output.decode()
    assert [r["Body"] for r in script.requests] == ["hello"]
    assert b"+14155550123" not in output  # masked in the worker's log
