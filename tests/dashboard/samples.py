"""Job functions the dashboard tests create jobs for (never run)."""

from __future__ import annotations


async def send_sms(phone: str, text: str) -> None:
    """Pretend to send an SMS."""


async def render_report(report_id: int, *, options: object = None) -> None:
    """Pretend to render a report."""


def resize_image(path: str) -> None:
    """Pretend to resize an image."""
