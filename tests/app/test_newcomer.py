"""A newcomer's first run: clone, ``make demo``, use the app.

Slow (it builds a fresh ``.venv`` from ``uv.lock``, which needs the
package index the first time): ``make test-slow``. The clone is of the
committed tree, as a newcomer gets it.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import PASSWORD, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    checkout = tmp_path / "backburner"
    subprocess.run(
        ["git", "clone", "--quiet", str(REPOSITORY), str(checkout)],
        check=True,
    )
    port = free_port()
    log = tmp_path / "demo.log"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "CATALOGUE_PORT": str(port),
        "CATALOGUE_SMTP_PORT": str(free_port()),
    }
    for name in ("VIRTUAL_ENV", "PYTHONPATH", "CATALOGUE_SMS_RETRY_DELAY"):
        env.pop(name, None)
    with log.open("w") as output:
        process = subprocess.Popen(
            ["make", "demo", f"PYTHON={sys.executable}"],
            cwd=checkout,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(checkout, ignore_errors=True)


def _wait_until_up(url: str, log: Path) -> str:
    deadline = time.monotonic() + 800
    while time.monotonic() < deadline:
        text = log.read_text()
        found = re.search(r"with password (\S+) \(shown once", text)
        if found:
            try:
                if httpx.get(url + "/api/products", timeout=2).is_success:
                    return found.group(1)
            except httpx.TransportError:
                pass
        time.sleep(1)
    pytest.fail(f"make demo did not come up:\n{log.read_text()[-3000:]}")


def test_make_demo_serves_the_catalogue_on_a_clean_checkout(
    demo: tuple[str, Path],
) -> None:
    url, log = demo
    admin_password = _wait_until_up(url, log)

    with httpx.Client(base_url=url, timeout=10) as user:
        assert user.get("/").status_code == 200
        kettles = user.get("/api/products?q=kettle").json()
        assert kettles["total"] > 0
        signed_up = user.post(
            "/api/auth/signup",
            json={
                "email": "new@example.com",
                "password": PASSWORD,
                "phone": "+14155550123",
            },
        )
        assert signed_up.status_code == 201
        code = None
        deadline = time.monotonic() + 60
        while code is None and time.monotonic() < deadline:
            for message in user.get("/api/outbox").json():
                found = re.search(r"#(\d{6})$", message["body"])
                if message["channel"] == "sms" and found:
                    code = found.group(1)
            time.sleep(0.5)
        assert code is not None, log.read_text()[-3000:]
        confirmed = user.post("/api/me/phone/confirm", json={"code": code})
        assert confirmed.json()["phone_confirmed"] is True
        assert user.get("/jobs/").status_code == 403

    with httpx.Client(base_url=url, timeout=10) as admin:
        admin.post(
            "/api/auth/signin",
            json={"email": "admin@example.com", "password": admin_password},
        ).raise_for_status()
        assert admin.get("/jobs/").status_code == 200
    assert "+14155550123" not in log.read_text()  # masked in the log
