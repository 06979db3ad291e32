"""Fixtures for the reference app: real SQLite files in a temp folder."""

from __future__ import annotations

import os

# Read by catalogue.jobs when it is imported: three SMS attempts take a
# fraction of a second instead of a minute.
os.environ["CATALOGUE_SMS_RETRY_DELAY"] = "0.1"

import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher

from catalogue import Settings, create_app, identity
from catalogue.services import Services

SECRET = "test-secret-" + "x" * 32
PASSWORD = "correct horse battery"


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Argon2 with its default cost takes a third of a second per hash on
    # a busy machine; tests hash a lot and check behaviour, not cost.
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(identity, "_hasher", cheap)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key=SECRET,
        run_worker=False,
        twilio_base_url="http://127.0.0.1:9/unused",
        smtp_port=free_port(),
        export_pace=0,
    )


@contextlib.asynccontextmanager
async def running(app: Any) -> AsyncIterator[Any]:
    """Run the app's lifespan; yield its FastAPI object."""
    api = app.app.app  # CancellationMiddleware -> SecurityHeaders -> API
    async with api.router.lifespan_context(api):
        yield api


def services_of(api: Any) -> Services:
    services: Services = api.state.services
    return services


@pytest.fixture
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, start_smtp_sink=False)
    async with running(app) as api:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://catalogue.test"
        ) as client:
            client.app = api  # type: ignore[attr-defined]
            yield client


async def sign_up(
    client: httpx.AsyncClient,
    email: str = "ann@example.com",
    phone: str = "+14155550123",
) -> dict[str, Any]:
    response = await client.post(
        "/api/auth/signup",
        json={"email": email, "password": PASSWORD, "phone": phone},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
