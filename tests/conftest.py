"""Fixtures shared by every test package."""

from __future__ import annotations

import os

import pytest

_POSTGRES_ENV = "BACKBURNER_TEST_POSTGRES_URL"
_DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _postgres_answers(url: str) -> bool:
    try:
        import psycopg
    except ImportError:
        return False
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a PostgreSQL server for tests that need one.

    In CI (``CI`` set) a missing server fails the test instead of skipping
    it, so that a green run cannot hide untested PostgreSQL code.
    """
    url = os.environ.get(_POSTGRES_ENV, _DEFAULT_POSTGRES_URL)
    in_ci = bool(os.environ.get("CI"))
    if _postgres_answers(url):
        return url
    message = (
        f"PostgreSQL not reachable at {url}; start it or set "
        f"{_POSTGRES_ENV} to a server's URL to run these tests"
    )
    if in_ci:
        pytest.fail(message)
    pytest.skip(message)
