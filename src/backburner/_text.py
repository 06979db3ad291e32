"""Text from jobs, made safe to show on one line.

A job's failure message is the application's text: a newline in it would
split a table row or forge a log line, and a terminal escape would steer
the terminal of whoever reads it.
"""

from __future__ import annotations

import re

__all__ = ["one_line"]

# Characters that end a line, move the cursor or start a terminal escape
# sequence.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")
