"""Cron expressions in a time zone: when a recurring job occurs.

A small interface over the ``cronsim`` library (the ``cron`` extra):
cronsim parses the expression and walks the calendar; this module turns
the wall-clock times it finds into instants, by one policy across
daylight-saving changes.

Expressions have 5 fields (minute, hour, day of month, month, day of
week) or 6 with seconds first. ``L`` (last day of month), ``LW``,
``MON#2``, ``5L``, names of days and months, ranges, lists and steps are
cronsim's syntax. The macros in ``MACROS`` (``@daily``...) are read as
their 5-field form.

Daylight saving (see ``docs/recurring.md``), decided by the hour field:

- **Hour field ``*``** (every hour: ``0 * * * *``, ``*/5 * * * *``,
  ``* * * * * *``): the schedule follows real time. It fires at every
  instant whose local time matches, so an hourly schedule fires every
  hour across both changes: the repeated hour at fall-back fires twice
  (each is a real hour), and the hour skipped at spring-forward does not
  exist, so nothing is lost.
- **Any other hour field** (``30 2 * * *``, ``0 9-17 * * MON-FRI``): the
  schedule follows the wall clock. A time skipped at spring-forward runs
  once, at the instant of the jump (several skipped times still run
  once); a time repeated at fall-back runs once, at its first pass.

In UTC (the default) there is no daylight saving and both rules agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from types import ModuleType
from typing import TYPE_CHECKING

# zoneinfo is imported by the first schedule (see load_time_zone): a
# worker without recurring jobs starts faster without it.
if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

__all__ = ["CronSchedule", "InvalidCronError", "load_time_zone"]

_UTC_NAMES = frozenset({"UTC", "Etc/UTC"})

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class InvalidCronError(ValueError):
    """Raised for a cron expression or time zone that cannot be used.

    Also raised when the ``cron`` extra (cronsim) is not installed.
    """


def _cronsim() -> ModuleType:
    # Imported on first use: one-off jobs do not need the cron extra.
    try:
        import cronsim
    except ImportError as error:
        raise InvalidCronError(
            "recurring jobs need the 'cron' extra: "
            "pip install 'backburner[cron]'"
        ) from error
    return cronsim


def load_time_zone(name: str) -> ZoneInfo:
    """Return the IANA time zone called ``name``.

    Raises:
        InvalidCronError: there is no such time zone.
    """
    if not isinstance(name, str) or not name or name != name.strip():
        raise InvalidCronError(f"invalid time zone name {name!r}")
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidCronError(
            f"unknown time zone {name!r} (use an IANA name such as "
            "'Europe/Berlin' or 'UTC')"
        ) from error


def _expand_macro(expression: str) -> str:
    """The 5-field form of a macro; any other expression as it is."""
    text = expression.strip()
    if not text.startswith("@"):
        return expression
    fields = MACROS.get(text.lower())
    if fields is None:
        raise InvalidCronError(
            f"unknown cron macro {expression!r}; use 5 or 6 fields, or "
            f"one of {', '.join(MACROS)}"
        )
    return fields


class CronSchedule:
    """A cron expression read in a time zone.

    Args:
        expression: 5 fields, 6 with seconds first, or a macro such
            as ``@daily`` (kept as its 5-field form).
        time_zone: an IANA time zone name; ``"UTC"`` by default.

    Raises:
        InvalidCronError: the expression is malformed or can never fire,
            or the time zone is unknown.
    """

    __slots__ = ("_follows_wall_clock", "_naive", "expression", "time_zone")

    def __init__(self, expression: str, time_zone: str = "UTC") -> None:
        if not isinstance(expression, str):
            raise InvalidCronError(f"invalid cron expression {expression!r}")
        fields = _expand_macro(expression).split()
        if len(fields) not in (5, 6):
            raise InvalidCronError(
                f"cron expression {expression!r} has {len(fields)} fields; "
                "use 5 (minute hour day month weekday) or 6 (seconds first)"
            )
        self.expression = " ".join(fields)
        self.time_zone = load_time_zone(time_zone)
        hour = fields[-4]
        self._follows_wall_clock = hour != "*"
        # cronsim's own daylight-saving handling differs between 5 and 6
        # fields; it walks naive wall-clock time here, and this module
        # maps that time to instants.
        self._naive = time_zone in _UTC_NAMES or self._follows_wall_clock
        library = _cronsim()
        try:
            library.CronSim(self.expression, datetime(2000, 1, 1))
        except library.CronSimError as error:
            raise InvalidCronError(
                f"invalid cron expression {expression!r}: {error}"
            ) from error
        if self.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise InvalidCronError(
                f"cron expression {expression!r} never fires"
            )

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, {self.time_zone.key!r})"

    @property
    def has_seconds(self) -> bool:
        """Whether the expression has a seconds field (6 fields)."""
        return len(self.expression.split()) == 6

    def next_after(self, moment: datetime) -> datetime | None:
        """The first occurrence strictly after ``moment``, in UTC.

        Returns ``None`` when the expression never fires again (cronsim
        looks 50 years ahead).

        Raises:
            ValueError: ``moment`` is naive.
        """
        return next(self.occurrences(moment), None)

    def occurrences(self, after: datetime) -> Iterator[datetime]:
        """Occurrences strictly after ``after``, in order, in UTC.

        Raises:
            ValueError: ``after`` is naive (when the iterator starts).
        """
        if after.utcoffset() is None:
            raise ValueError("after must be timezone-aware")
        after = after.astimezone(UTC)
        previous = after
        for local in self._local_times(after):
            instant = self._instant(local)
            # Skipped wall-clock times all map to the instant of the
            # jump, and so does the first real time after it: one run.
            if instant > previous:
                previous = instant
                yield instant

    def _local_times(self, after: datetime) -> Iterator[datetime]:
        zone = self.time_zone
        if self._naive:
            start = after.astimezone(zone).replace(tzinfo=None)
        else:
            start = after.astimezone(zone)
        library = _cronsim()
        walk = library.CronSim(self.expression, start)
        try:
            yield from walk
        except library.CronSimError:
            # cronsim raises for some dates it cannot walk past (rare
            # day-of-week and day-of-month combinations): no more runs.
            return

    def _instant(self, local: datetime) -> datetime:
        zone = self.time_zone
        if local.tzinfo is None:
            local = local.replace(tzinfo=zone)
        round_trip = local.astimezone(UTC).astimezone(zone)
        if round_trip.replace(tzinfo=None) == local.replace(tzinfo=None):
            # A real time; at a repeated time fold=0 is the first pass.
            return local.astimezone(UTC)
        return _end_of_gap(local.replace(tzinfo=None), zone)


def _end_of_gap(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant the clock jumped over ``wall`` (a skipped time).

    For a skipped wall time, the offset before the jump places it after
    the jump and the offset after places it before; the jump lies in
    between, found to the second by bisection.
    """
    early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    late = wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
    low = int(early.timestamp())
    high = int(late.timestamp())
    if high <= low:  # Not a gap after all; cannot happen with zoneinfo.
        return late
    while high - low > 1:
        middle = (low + high) // 2
        reading = datetime.fromtimestamp(middle, zone).replace(tzinfo=None)
        if reading > wall:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
