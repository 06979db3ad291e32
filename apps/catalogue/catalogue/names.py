"""The one rule for names people type: categories and products alike."""

from __future__ import annotations


def tidy_name(value: str, limit: int) -> str:
    """Collapse runs of whitespace and trim; refuse empty or long names.

    Raises:
        ValueError: nothing is left, or more than ``limit`` characters
            (the message becomes the field's message in the 422).
    """
    value = " ".join(value.split())
    if not value:
        raise ValueError("enter a name")
    if len(value) > limit:
        raise ValueError(f"use at most {limit} characters")
    return value
