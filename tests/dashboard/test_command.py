"""``backburner dashboard``: options, and serving for real."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backburner.cli import build_parser, main


def test_defaults_are_loopback_port_8080() -> None:
    args = build_parser().parse_args(["dashboard"])

    assert (args.host, args.port, args.read_only) == ("127.0.0.1", 8080, False)


@pytest.mark.parametrize("port", ["0", "65536", "http", "-1"])
def test_a_bad_port_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["dashboard", "--port", port]) == 2
    assert "port" in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_dashboard(url: str) -> tuple[subprocess.Popen[str], int]:
    """Start ``backburner dashboard`` on a free port; wait for its banner.

    A port found free may be taken before the command binds it (other
    tests run alongside): the command then says so, and another port is
    tried.
    """
    for _ in range(5):
        port = free_port()
        command = ["backburner", "dashboard", "--storage", url]
        process = subprocess.Popen(
            [sys.executable, "-m", *command, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert process.stdout is not None
        banner = process.stdout.readline()
        if banner:
            assert f"http://127.0.0.1:{port}/" in banner
            return process, port
        _, err = process.communicate(timeout=30)
        assert "cannot listen" in err, err
    raise AssertionError("no free port found")


def test_the_command_serves_the_dashboard(tmp_path: Path) -> None:
    process, port = start_dashboard(f"sqlite:///{tmp_path / 'jobs.db'}")
    try:
        # The banner comes once the socket listens: no wait needed.
        answer = httpx.get(f"http://127.0.0.1:{port}/", timeout=30)
        assert answer.status_code == 200
        assert "Overview" in answer.text
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_a_port_in_use_is_one_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        url = f"sqlite:///{tmp_path / 'jobs.db'}"

        code = main(["dashboard", "--storage", url, "--port", port])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(
        f"backburner: error: cannot listen on 127.0.0.1:{port}"
    )
    assert err.count("\n") == 1
