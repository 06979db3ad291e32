"""``python -m backburner.demo`` on the command line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backburner.demo.__main__ import parse_args

pytestmark = pytest.mark.timeout(60)


def run_demo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backburner.demo", *args],
        capture_output=True,
        text=True,
        timeout=50,
        env={**os.environ, **env},
        check=False,
    )


def test_help_describes_the_options() -> None:
    result = run_demo("--help")

    assert result.returncode == 0, result.stderr
    assert "--host" in result.stdout
    assert "BACKBURNER_DEMO_PORT" in result.stdout


def test_a_bad_port_in_the_environment_is_refused() -> None:
    result = run_demo(BACKBURNER_DEMO_PORT="eighty")

    assert result.returncode == 2
    assert "not a port number: 'eighty'" in result.stderr


def test_flags_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKBURNER_DEMO_HOST", "127.0.0.2")
    monkeypatch.setenv("BACKBURNER_DEMO_PORT", "9001")

    from_env = parse_args([])
    from_flags = parse_args(["--host", "127.0.0.3", "--port", "9002"])

    assert (from_env.host, from_env.port) == ("127.0.0.2", 9001)
    assert (from_flags.host, from_flags.port) == ("127.0.0.3", 9002)


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_args(["--port", "70000"])

    assert exit_info.value.code == 2


def test_a_missing_server_package_is_named_not_a_traceback() -> None:
    hide_uvicorn = (
        "import runpy, sys; sys.modules['uvicorn'] = None; "
        "runpy.run_module('backburner.demo', run_name='__main__')"
    )
    result = subprocess.run(
        [sys.executable, "-c", hide_uvicorn],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )

    assert result.returncode == 1
    assert "needs FastAPI and uvicorn (uvicorn is missing)" in result.stderr
    assert "Traceback" not in result.stderr
