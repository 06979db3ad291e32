"""The reference app fuzzed from its own OpenAPI description.

Schemathesis generates requests for every operation, valid and not,
and sends them over HTTP to the app on a loopback uvicorn, once as a
stranger and once signed in. No answer may be a 5xx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from chaos_app import PASSWORD, catalogue_server
from chaos_harness import Record, seconds, size
from hypothesis import HealthCheck, given, settings

EXAMPLES = size(200, 5)

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.timeout(int(seconds(1500, 110))),
]


def fuzz(base_url: str, session: requests.Session) -> tuple[int, list[str]]:
    """Call every operation ``EXAMPLES`` times; return (calls, 5xx)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/api/openapi.json")
    calls = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy())
        def call(case: Any) -> None:
            nonlocal calls
            calls += 1
            if case.query and "slow" in case.query:
                # A development knob that makes the search sleep for up
                # to two minutes on purpose.
                case.query["slow"] = 0
            where = f"{case.method} {case.formatted_path} {case.query}"
            try:
                response = case.call(
                    base_url=base_url, session=session, timeout=30
                )
            except requests.RequestException as error:
                failures.append(f"{where} -> {type(error).__name__}")
                return
            if response.status_code >= 500:
                failures.append(f"{where} -> {response.status_code}")

        call()
    return calls, failures


@pytest.mark.chaos_smoke
def test_no_generated_request_gets_a_server_error(
    tmp_path: Path, record: Record
) -> None:
    figures = record(
        "reference app API fuzzed (Schemathesis)",
        size=f"{EXAMPLES} cases per operation, anonymous and signed in",
    )
    with catalogue_server(tmp_path) as base_url:
        stranger = requests.Session()
        calls, failures = fuzz(base_url, stranger)

        member = requests.Session()
        signed_up = member.post(
            f"{base_url}/api/auth/signup",
            json={
                "email": "fuzz@example.com",
                "password": PASSWORD,
                "phone": "+14155550123",
            },
            timeout=30,
        )
        assert signed_up.status_code == 201, signed_up.text
        more, also = fuzz(base_url, member)

    failures += also
    figures.errors_surfaced = len(failures)
    figures.note(f"{calls + more} requests")
    if failures:
        figures.note(f"first: {sorted(set(failures))[0]}")
    assert sorted(set(failures)) == [], "\n".join(sorted(set(failures)))
