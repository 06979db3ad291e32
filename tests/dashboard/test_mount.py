"""Mounted inside another ASGI app, every link and redirect stays under
the mount path."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from backburner.dashboard import create_dashboard
from backburner.jobs import Client, JobState

from . import samples
from .conftest import http_for

PREFIX = "/admin/jobs"


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("the shop")


def starlette_app(client: Client) -> Any:
    return Starlette(
        routes=[
            Route("/", home),
            Mount(PREFIX, app=create_dashboard(client)),
        ]
    )


def fastapi_app(client: Client) -> Any:
    app = FastAPI()
    app.add_api_route("/", home)
    app.mount(PREFIX, create_dashboard(client))
    return app


@pytest.mark.parametrize("build", [starlette_app, fastapi_app])
async def test_links_forms_and_redirects_stay_under_the_mount_path(
    client: Client, build: Callable[[Client], Any]
) -> None:
    job_id = await client.enqueue(samples.send_sms, "+44", "x")
    outer = build(client)

    async with http_for(outer) as http:
        assert (await http.get("/")).text == "the shop"
        page = await http.get(f"{PREFIX}/job/{job_id}")
        assert page.status_code == 200
        targets = re.findall(r'(?:href|src|action)="([^"]+)"', page.text)
        assert targets
        assert all(t.startswith(PREFIX + "/") for t in targets), targets
        assert f"Path={PREFIX};" in page.headers["set-cookie"]
        static = [t for t in targets if "/static/" in t]
        for target in static:
            assert (await http.get(target)).status_code == 200

        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        answer = await http.post(
            f"{PREFIX}/job/{job_id}/delete",
            data={"csrf": token.group(1), "back": f"/job/{job_id}"},
        )
        assert answer.status_code == 303
        assert answer.headers["location"].startswith(f"{PREFIX}/job/{job_id}")
        assert (await client.get(job_id)).state is JobState.DELETED
