"""Job functions of the chaos scenarios that run in the test process."""

from __future__ import annotations

from backburner.jobs import retry

# What ``keep`` received, by key; read by the test after the server ran.
received: dict[str, object] = {}


def keep(key: str, value: object) -> None:
    """Remember the value this job was given."""
    received[key] = value


@retry(attempts=1)
def explode(message: str) -> None:
    """Fail at once, for good, with the given message."""
    raise ValueError(message)
