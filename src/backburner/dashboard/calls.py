"""The call a job makes, shown the way its author wrote it.

Arguments are read from the stored JSON document, never decoded into
application objects: showing a job must not import application code
(an enum argument would). Tagged values come out as the constructor
call that made them (``datetime('2026-01-02T03:04:05+00:00')``,
``Decimal('1.10')``, ``timedelta(days=1)``), bytes as a bytes literal,
and a long argument is folded to one line that the page can expand.

Personal data can be hidden with a mask: a callable that receives the
job function's reference, the argument's name (``args[0]`` for a
positional argument, the keyword otherwise, ``result`` for the value
the job returned) and its stored value, and returns what to show
instead; return :data:`HIDDEN` to show a placeholder.
"""

from __future__ import annotations

import base64
import json
import pprint
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = [
    "HIDDEN",
    "ArgumentMask",
    "ArgumentView",
    "CallView",
    "pretty",
    "view_call",
    "view_result",
]

_TAG = "__bb__"
_FOLD_AT = 120
_SUMMARY_LENGTH = 80
_WIDTH = 72
# Pretty-printing is slow on huge values: beyond this many characters of
# stored JSON an argument is shown as the start of its JSON instead.
_MAX_PRETTY = 50_000


class _Literal:
    """A value whose ``repr`` is given text (used by :mod:`pprint`)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


HIDDEN: Any = _Literal("‹hidden›")
"""Return this from a mask to show a placeholder instead of a value."""

ArgumentMask: TypeAlias = Callable[[str, str, Any], Any]
"""``mask(function, argument, stored_value) -> value to show``."""


@dataclass(frozen=True, slots=True)
class ArgumentView:
    """One argument as shown: ``name`` is empty for a positional one."""

    name: str
    text: str
    summary: str
    folded: bool


@dataclass(frozen=True, slots=True)
class CallView:
    """A job's call: its function and arguments, ready to show.

    ``damaged`` holds the raw document when it cannot be read.
    """

    function: str
    arguments: list[ArgumentView]
    damaged: str | None = None


def _shown(value: Any) -> Any:
    """Turn a stored JSON value into objects that pprint like Python."""
    if isinstance(value, list):
        return [_shown(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None or "v" not in value:
        return {key: _shown(item) for key, item in value.items()}
    return _shown_tagged(str(tag), value["v"])


def _shown_tagged(tag: str, payload: Any) -> Any:
    if tag == "tuple" and isinstance(payload, list):
        return tuple(_shown(item) for item in payload)
    if tag in ("set", "frozenset") and isinstance(payload, list):
        items = ", ".join(pretty_inline(_shown(i)) for i in payload)
        if not items:
            return _Literal(f"{tag}()")
        return _Literal(
            f"{{{items}}}" if tag == "set" else f"{tag}({{{items}}})"
        )
    if tag == "dict" and isinstance(payload, list):
        pairs = [
            f"{pretty_inline(_shown(pair[0]))}: "
            f"{pretty_inline(_shown(pair[1]))}"
            for pair in payload
            if isinstance(pair, list) and len(pair) == 2
        ]
        return _Literal("{" + ", ".join(pairs) + "}")
    if tag in ("datetime", "time") and isinstance(payload, list) and payload:
        zone = _shown_zone(payload[1] if len(payload) > 1 else None)
        return _Literal(f"{tag}({payload[0]!r}{zone})")
    if tag == "enum" and isinstance(payload, list) and len(payload) == 2:
        return _Literal(f"{payload[0]}({pretty_inline(_shown(payload[1]))})")
    if tag == "float":
        return _Literal(f"float({payload!r})")
    if tag == "timedelta" and isinstance(payload, list) and len(payload) == 3:
        return _Literal(_timedelta_text(payload))
    if tag == "bytes" and isinstance(payload, str):
        try:
            return base64.b64decode(payload.encode(), validate=True)
        except ValueError:
            pass  # damaged: shown as stored, below
    names = {"uuid": "UUID", "decimal": "Decimal", "bytes": "b64decode"}
    return _Literal(f"{names.get(tag, tag)}({payload!r})")


def _timedelta_text(parts: list[Any]) -> str:
    """``timedelta(days=-1, microseconds=5)``, as Python writes it."""
    named = [
        f"{name}={number!r}"
        for name, number in zip(
            ("days", "seconds", "microseconds"), parts, strict=True
        )
        if number
    ]
    return f"timedelta({', '.join(named) or '0'})"


def _shown_zone(zone: Any) -> str:
    if isinstance(zone, list) and len(zone) == 2:
        # A timezone the ISO text could not hold: its offset is in the
        # text (to the microsecond), its name is not.
        return f", tzname={zone[1]!r}" if zone[1] else ""
    return f", {zone!r}" if zone else ""


def pretty_inline(value: Any) -> str:
    """A value as one line of Python-like text."""
    return pprint.pformat(value, width=10**6, sort_dicts=False)


def pretty(value: Any) -> str:
    """A value as Python-like text, broken over lines when long."""
    return pprint.pformat(value, width=_WIDTH, sort_dicts=False, compact=True)


def _argument(name: str, value: Any) -> ArgumentView:
    text = pretty(value)
    line = pretty_inline(value)
    folded = len(line) > _FOLD_AT or "\n" in text
    summary = line
    if len(line) > _SUMMARY_LENGTH:
        summary = line[:_SUMMARY_LENGTH] + "…"
    return ArgumentView(name, text, summary, folded)


def _cut(text: str) -> str:
    hidden = len(text) - _MAX_PRETTY
    return f"{text[:_MAX_PRETTY]}… ({hidden} more characters not shown)"


def _huge_argument(name: str, value: Any) -> ArgumentView | None:
    if isinstance(value, _Literal):
        return None
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) <= _MAX_PRETTY:
        return None
    return ArgumentView(name, _cut(text), text[:_SUMMARY_LENGTH] + "…", True)


def view_call(
    function: str, raw_arguments: str, mask: ArgumentMask | None = None
) -> CallView:
    """Build the view of a job's call from its stored arguments."""
    try:
        document = json.loads(raw_arguments)
        args = document["args"]
        kwargs = document["kwargs"]
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise TypeError("args must be a list and kwargs an object")
    except (ValueError, KeyError, TypeError):
        damaged = raw_arguments
        if len(damaged) > _MAX_PRETTY:
            damaged = _cut(damaged)
        return CallView(function, [], damaged=damaged)

    named: list[tuple[str, str, Any]] = [
        (f"args[{index}]", "", value) for index, value in enumerate(args)
    ]
    named += [(str(key), str(key), value) for key, value in kwargs.items()]
    views = []
    for argument, label, stored in named:
        if mask is not None:
            stored = mask(function, argument, stored)
        huge = _huge_argument(label, stored)
        views.append(huge or _argument(label, _shown(stored)))
    return CallView(function, views)


def view_result(
    function: str, stored: Any, mask: ArgumentMask | None = None
) -> ArgumentView:
    """Build the view of a job's result from its stored JSON value."""
    if mask is not None:
        stored = mask(function, "result", stored)
    return _huge_argument("", stored) or _argument("", _shown(stored))
