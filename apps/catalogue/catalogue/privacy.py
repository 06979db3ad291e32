"""Masks for personal data in logs: enough to tell entries apart."""

from __future__ import annotations

__all__ = ["mask_email", "mask_phone"]


def mask_phone(phone: str) -> str:
    """``+4915112345678`` -> ``+49*********78``: country and last two."""
    if len(phone) <= 5:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 5) + phone[-2:]


def mask_email(email: str) -> str:
    """``ann.lee@example.com`` -> ``a******@example.com``."""
    local, at, domain = email.partition("@")
    if not at:
        return "*" * len(email)
    return local[:1] + "*" * max(len(local) - 1, 1) + "@" + domain
