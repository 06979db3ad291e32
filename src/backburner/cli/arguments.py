"""Argument types shared by the commands: each refuses bad input early.

Every function here is an argparse ``type=``: it returns the parsed
value or raises :class:`argparse.ArgumentTypeError`, which the parser
turns into a usage error (exit code 2) before anything is touched.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from backburner.jobs.queues import check_queue_name
from backburner.storage.base import MAX_JOB_ID, JobId, JobState

STATE_NAMES = ", ".join(state.value for state in JobState)


def job_id(text: str) -> JobId:
    """A job id: a positive integer that fits in 64 bits."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_JOB_ID:
        raise argparse.ArgumentTypeError(
            f"invalid job id {text!r}: ids run from 1 to {MAX_JOB_ID}"
        )
    return value


def state(text: str) -> JobState:
    """A state name, as the glossary spells it."""
    try:
        return JobState(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid state {text!r} (choose from {STATE_NAMES})"
        ) from None


def queue(text: str) -> str:
    """One queue name."""
    try:
        return check_queue_name(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# A job function reference is compared with the stored one, so anything
# an import could name is allowed; what no stored reference holds is
# refused: spaces, control characters, and the lone surrogates that a
# command line which is not UTF-8 becomes (neither storage can compare
# them). isprintable() is false for all of these but the plain space.
_MAX_REFERENCE = 1000


def function_reference(text: str) -> str:
    """A job function as stored, ``module:qualname``."""
    module, sep, qualname = text.partition(":")
    usable = (
        sep
        and module
        and qualname
        and len(text) <= _MAX_REFERENCE
        and text.isprintable()
        and " " not in text
    )
    if not usable:
        raise argparse.ArgumentTypeError(
            f"invalid job function {text!r}: give MODULE:NAME as listed, "
            "e.g. myapp.mail:send_welcome"
        )
    return text


def queue_list(text: str) -> list[str]:
    """Comma-separated queue names, in the order they are drained."""
    names = [queue(name.strip()) for name in text.split(",")]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(f"a queue is repeated in {text!r}")
    return names


def positive_int(text: str) -> int:
    """An integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def page_size(text: str) -> int:
    """How many jobs a listing shows: 1 to 1000."""
    value = positive_int(text)
    if value > 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is over 1000")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def seconds(text: str) -> float:
    """A finite, non-negative number of seconds."""
    value = _number(text)
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (finite, >= 0)"
        )
    return value


def positive_seconds(text: str) -> float:
    """A finite number of seconds above zero, as a timeout must be."""
    value = _number(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds (finite, > 0)"
        )
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def json_value(text: str, what: str) -> Any:
    """Parse strict JSON (no ``NaN`` or ``Infinity``).

    Raises:
        argparse.ArgumentTypeError: ``text`` is not a JSON document;
            the message names ``what`` it was meant to be.
    """
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{what} is not valid JSON ({error}): {text!r}"
        ) from None


def json_object(text: str) -> dict[str, Any]:
    """A JSON object, as given to ``--kwargs``."""
    value = json_value(text, "--kwargs")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f"--kwargs must be a JSON object, got {text!r}"
        )
    return value
