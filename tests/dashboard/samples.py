"""Job functions the dashboard tests create jobs for (most never run)."""

from __future__ import annotations

from backburner.jobs import keep_result


async def send_sms(phone: str, text: str) -> None:
    """Pretend to send an SMS."""


async def render_report(report_id: int, *, options: object = None) -> None:
    """Pretend to render a report."""


def resize_image(path: str) -> None:
    """Pretend to resize an image."""


@keep_result(False)
def issue_token(user: str) -> str:
    """Return a secret that must never show (a server runs this one)."""
    return f"tok-s3cret-{user}"
