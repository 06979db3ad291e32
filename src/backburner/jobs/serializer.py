"""Job arguments as JSON, round-tripped losslessly or refused.

Plain JSON values (``None``, ``bool``, ``int``, finite ``float``, ``str``,
``list``, ``dict`` with ``str`` keys) are stored as themselves. Other
supported types become a tagged object ``{"__bb__": tag, "v": value}``:

=============== ============================================================
type            stored as
=============== ============================================================
datetime        ISO 8601 with its offset, and its zone: the key of a
                ``ZoneInfo``, or the name and exact offset of a
                ``timezone`` when the text cannot hold them (a name of
                its own, an offset with microseconds); naive datetimes
                and other tzinfo classes are refused
time            ISO 8601, and its zone if the text cannot hold it (as
                for a datetime); a naive time is kept naive
date            ISO 8601
timedelta       days, seconds, microseconds
UUID            canonical string
Decimal         string (exact)
float           ``"nan"``, ``"inf"``, ``"-inf"`` for the non-finite ones
Enum member     ``module:qualname`` of the class and the member's value
bytes           base64
tuple           list of items
set, frozenset  list of items
dict            list of key/value pairs when a key is not a ``str`` or
                the dict has a ``"__bb__"`` key of its own
=============== ============================================================

Only exact types are accepted (a ``dict`` subclass would come back as a
plain ``dict``), except enum members. Strings must be storable by every
backend: no lone surrogates, no NUL characters.
"""

from __future__ import annotations

import base64
import contextvars
import enum
import functools
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING, Any

from backburner.jobs.errors import JobArgumentError

# ``uuid``, ``decimal`` and ``zoneinfo`` take milliseconds to import, and
# a worker start pays for every import: each is imported where a value of
# its type is first met, not here.
if TYPE_CHECKING:
    from decimal import Decimal
    from uuid import UUID

_TAG = "__bb__"
_MAX_DEPTH = 64
# Below this many bits an integer has fewer than 640 decimal digits: the
# lowest limit on int-to-text conversion a process can set (Python's
# str_digits_check_threshold). Longer ones are checked against the
# limit in force, so that a process with a lowered limit refuses them
# here rather than fail later in json.dumps.
_SHORT_INT_BITS = 2_100
# Paths in error messages name this many steps into an argument, then
# "...": a refused value nested 64 deep would otherwise fill a screen.
_SHOWN_DEPTH = 8
_MICROSECOND = timedelta(microseconds=1)
# Python's default limit on int-to-text conversion (4300 digits).
_DEFAULT_INT_DIGITS = sys.int_info.default_max_str_digits
# Set while encode_json runs for a caller that wants integers every
# process can read back (with the default limit), whatever this one's
# limit. Read only for integers past _SHORT_INT_BITS: no other value
# pays for it.
_DEFAULT_LIMIT_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "backburner_default_int_limit", default=False
)


class _RefusedError(Exception):
    """An unstorable value, with the path inside the argument."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(detail)
        self.path = path
        self.detail = detail


def text_problem(text: str) -> str | None:
    """Why no storage can hold ``text`` (a NUL character, a lone
    surrogate), or ``None`` when it can: the rule strings of arguments
    follow, for other text a job carries (a unique key, a mutex)."""
    try:
        _check_text(text, "")
    except _RefusedError as refused:
        return refused.detail
    return None


def _check_text(text: str, path: str) -> str:
    if "\x00" in text:
        raise _RefusedError(path, "strings cannot contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _RefusedError(
            path, "string contains a lone surrogate (not valid UTF-8)"
        ) from None
    return text


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {_TAG: tag, "v": value}


def _enum_reference(member: enum.Enum, path: str) -> str:
    cls = type(member)
    name = f"{cls.__module__}:{cls.__qualname__}"
    if "<locals>" in cls.__qualname__ or cls.__module__ == "__main__":
        raise _RefusedError(
            path, f"enum {name} cannot be imported by a worker"
        )
    return name


def _step(path: str, depth: int, step: str) -> str:
    """The path one step below ``path`` (which is ``depth`` deep)."""
    if depth < _SHOWN_DEPTH:
        return path + step
    return path if depth > _SHOWN_DEPTH else f"{path}..."


def _encode(value: Any, path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise _RefusedError(path, f"nested deeper than {_MAX_DEPTH} levels")
    kind = type(value)
    if value is None or kind is bool:
        return value
    if kind is int:
        if value.bit_length() > _SHORT_INT_BITS:
            _check_int_digits(value, path)
        return value
    if kind is str:
        return _check_text(value, path)
    if kind is float:
        if math.isfinite(value):
            return value
        return _tagged("float", repr(value))
    if isinstance(value, enum.Enum):
        return _tagged(
            "enum",
            [
                _enum_reference(value, path),
                _encode(value.value, _step(path, depth, ".value"), depth + 1),
            ],
        )
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        items = [
            _encode(item, _step(path, depth, f"[{index}]"), depth + 1)
            for index, item in enumerate(value)
        ]
        return items if kind is list else _tagged(kind.__name__, items)
    if kind is dict:
        return _encode_dict(value, path, depth)
    encoder = _SCALARS.get(kind) or _late_scalars().get(kind)
    if encoder is not None:
        return encoder(value, path)
    raise _RefusedError(
        path, f"values of type {kind.__qualname__} cannot be stored"
    )


def _check_int_digits(value: int, path: str) -> None:
    """Refuse an integer too long for Python to write as text (JSON), or
    to read back with the default limit when the caller asked for that."""
    limit = sys.get_int_max_str_digits()
    if _DEFAULT_LIMIT_ONLY.get() and not 0 < limit < _DEFAULT_INT_DIGITS:
        limit = _DEFAULT_INT_DIGITS
    if limit and abs(value) >= 10**limit:
        raise _RefusedError(
            path, f"integers of more than {limit} digits cannot be stored"
        )


def _encode_dict(value: dict[Any, Any], path: str, depth: int) -> Any:
    if all(type(key) is str for key in value) and _TAG not in value:
        return {
            _check_text(key, path): _encode(
                item, _step(path, depth, f"[{key!r}]"), depth + 1
            )
            for key, item in value.items()
        }
    return _tagged(
        "dict",
        [
            [
                _encode(key, _step(path, depth, ".key"), depth + 1),
                _encode(item, _step(path, depth, f"[{key!r}]"), depth + 1),
            ]
            for key, item in value.items()
        ],
    )


def _encode_datetime(value: datetime, path: str) -> list[Any]:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _RefusedError(
            path, "naive datetime (give it a tzinfo, e.g. datetime.UTC)"
        )
    return [value.isoformat(), _encode_zone(value.tzinfo, path)]


def _encode_time(value: time, path: str) -> str | list[Any]:
    # A time with a ZoneInfo has no offset, so its ISO text has none:
    # the zone is kept beside it, as for a datetime. The bare text is
    # what every release has written for the other times.
    text = value.isoformat()
    if value.tzinfo is None:
        return text
    zone = _encode_zone(value.tzinfo, path)
    return text if zone is None else [text, zone]


def _encode_zone(zone: tzinfo, path: str) -> str | list[Any] | None:
    """What a datetime or a time keeps of ``zone`` beside its ISO text.

    None when the text holds all of it (a ``timezone`` without a name of
    its own, whose offset is whole seconds); the key of a ``ZoneInfo``;
    ``[offset in microseconds, name or None]`` for any other
    ``timezone``. Other tzinfo classes are refused: they would come back
    as a ``timezone``.
    """
    if type(zone) is timezone:
        return _encode_fixed_zone(zone)
    key = _zone_key(zone, path)
    if key is None:
        raise _RefusedError(
            path,
            f"tzinfo of type {type(zone).__qualname__} cannot be stored "
            "(use datetime.timezone or zoneinfo.ZoneInfo)",
        )
    return key


def _encode_fixed_zone(zone: timezone) -> list[Any] | None:
    offset = zone.utcoffset(None)
    name = zone.tzname(None)
    # A name equal to the one Python gives the bare offset changes
    # nothing: such a zone compares, converts and names itself the same.
    own_name = None if name == timezone(offset).tzname(None) else name
    # Python 3.11 reads an offset under a second ("+00:00:00.000007")
    # back as UTC: an offset with microseconds is kept as a number too.
    if own_name is None and not offset.microseconds:
        return None
    return [offset // _MICROSECOND, own_name]


def _zone_key(zone: tzinfo, path: str) -> str | None:
    """The IANA key of ``zone`` if it is a ``ZoneInfo``, else None."""
    # A ZoneInfo exists only once zoneinfo has been imported: until then
    # the answer is known without importing it.
    if "zoneinfo" not in sys.modules:
        return None
    from zoneinfo import ZoneInfo

    if type(zone) is not ZoneInfo:
        return None
    if zone.key is None:
        raise _RefusedError(
            path,
            "a ZoneInfo without a key (read from a file) cannot be stored",
        )
    return zone.key


def _decode_zone(zone: str | list[Any]) -> tzinfo:
    if isinstance(zone, str):
        from zoneinfo import ZoneInfo

        return ZoneInfo(zone)
    microseconds, name = zone
    offset = timedelta(microseconds=microseconds)
    return timezone(offset) if name is None else timezone(offset, name)


def _decode_datetime(payload: list[Any]) -> datetime:
    text, zone = payload
    moment = datetime.fromisoformat(text)
    if zone is None:
        return moment
    if not isinstance(zone, str):
        # A fixed offset: its wall time is right in the text, whatever
        # tzinfo fromisoformat gave it.
        return moment.replace(tzinfo=_decode_zone(zone))
    tz = _decode_zone(zone)
    wall = moment.replace(tzinfo=tz)
    # The same wall time in the zone, with the fold that gives the stored
    # offset: a time in a daylight-saving gap or overlap comes back as it
    # was written, not moved to another wall time of the same instant.
    for fold in (0, 1):
        candidate = wall.replace(fold=fold)
        if candidate.utcoffset() == moment.utcoffset():
            return candidate
    return moment.astimezone(tz)


def _decode_time(payload: str | list[Any]) -> time:
    if isinstance(payload, str):
        return time.fromisoformat(payload)
    text, zone = payload
    return time.fromisoformat(text).replace(tzinfo=_decode_zone(zone))


def _scalar(
    tag: str, encode: Callable[[Any, str], Any]
) -> Callable[[Any, str], Any]:
    return lambda value, path: _tagged(tag, encode(value, path))


_SCALARS: dict[type, Callable[[Any, str], Any]] = {
    datetime: _scalar("datetime", _encode_datetime),
    date: _scalar("date", lambda v, _: v.isoformat()),
    time: _scalar("time", _encode_time),
    timedelta: _scalar(
        "timedelta", lambda v, _: [v.days, v.seconds, v.microseconds]
    ),
    bytes: _scalar("bytes", lambda v, _: base64.b64encode(v).decode()),
}


@functools.cache
def _late_scalars() -> dict[type, Callable[[Any, str], Any]]:
    """The scalars whose modules are imported only when needed.

    Asked only for a type missing from ``_SCALARS``: a process that
    never meets such a value never imports ``uuid`` or ``decimal``.
    """
    import decimal
    import uuid

    return {
        uuid.UUID: _scalar("uuid", lambda v, _: str(v)),
        decimal.Decimal: _scalar("decimal", lambda v, _: str(v)),
    }


def _decode_uuid(text: str) -> UUID:
    import uuid

    return uuid.UUID(text)


def _decode_decimal(text: str) -> Decimal:
    import decimal

    return decimal.Decimal(text)


def _import_enum(reference: str) -> type[enum.Enum]:
    # Imported here: functions.py imports this module for its errors.
    from backburner.jobs.functions import import_reference

    found = import_reference(reference)
    if not (isinstance(found, type) and issubclass(found, enum.Enum)):
        raise ValueError(f"{reference} is not an enum")
    return found


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _decode_datetime,
    "date": date.fromisoformat,
    "time": _decode_time,
    "timedelta": lambda v: timedelta(
        days=v[0], seconds=v[1], microseconds=v[2]
    ),
    "uuid": _decode_uuid,
    "decimal": _decode_decimal,
    "bytes": lambda v: base64.b64decode(v.encode(), validate=True),
    "float": float,
}


def _decode(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_decode(item) for item in value]
    if kind is not dict:
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {key: _decode(item) for key, item in value.items()}
    payload = value["v"]
    decoder = _DECODERS.get(tag)
    if decoder is not None:
        return decoder(payload)
    if tag == "tuple":
        return tuple(_decode(item) for item in payload)
    if tag == "set":
        return {_decode(item) for item in payload}
    if tag == "frozenset":
        return frozenset(_decode(item) for item in payload)
    if tag == "dict":
        return {_decode(key): _decode(item) for key, item in payload}
    if tag == "enum":
        return _import_enum(payload[0])(_decode(payload[1]))
    raise ValueError(f"unknown tag {tag!r}")


def encode_value(value: object, name: str) -> str:
    """Encode one value as a JSON document.

    Raises:
        JobArgumentError: the value (named ``name``) cannot be stored.
    """
    try:
        return json.dumps(_encode(value, name, 0), ensure_ascii=False)
    except _RefusedError as refused:
        raise JobArgumentError(refused.path, refused.detail) from None
    except RecursionError:
        raise JobArgumentError(name, "value is nested too deeply") from None


def encode_json(
    value: object, name: str, *, default_int_limit: bool = False
) -> Any:
    """Encode one value as JSON data (lists, dicts, strings, numbers...).

    What :func:`encode_value` writes, before it becomes text: for a value
    kept inside a larger JSON document (a history entry's ``data``).
    ``default_int_limit`` refuses integers of more digits than Python's
    default limit allows (4300), even where this process's limit is
    higher or off: for a value that other processes must read back.

    Raises:
        JobArgumentError: the value (named ``name``) cannot be stored.
    """
    asked = _DEFAULT_LIMIT_ONLY.set(True) if default_int_limit else None
    try:
        return _encode(value, name, 0)
    except _RefusedError as refused:
        raise JobArgumentError(refused.path, refused.detail) from None
    except RecursionError:
        raise JobArgumentError(name, "value is nested too deeply") from None
    finally:
        if asked is not None:
            _DEFAULT_LIMIT_ONLY.reset(asked)


def decode_json(data: Any) -> Any:
    """Decode what :func:`encode_json` returned (after a JSON round trip).

    Raises:
        ValueError: the data is damaged or names an enum that no longer
            imports.
    """
    try:
        return _decode(data)
    except (TypeError, KeyError, IndexError, ImportError, AttributeError) as e:
        raise ValueError(f"cannot decode stored value: {e}") from e


def decode_value(text: str) -> Any:
    """Decode a document written by :func:`encode_value`.

    Raises:
        ValueError: the document is damaged or names an enum that no
            longer imports.
    """
    try:
        return _decode(json.loads(text))
    except (TypeError, KeyError, IndexError, ImportError, AttributeError) as e:
        raise ValueError(f"cannot decode stored value: {e}") from e


# What encode_arguments writes for a call without arguments.
_NO_ARGUMENTS = '{"args":[],"kwargs":{}}'


def encode_arguments(
    args: Sequence[object], kwargs: Mapping[str, object]
) -> str:
    """Encode a call's arguments as one JSON document.

    Raises:
        JobArgumentError: an argument cannot be stored; the error names it
            (``args[1]`` or the keyword) and the path inside it.
    """
    if not args and not kwargs:
        # The most common call of all, spared the encoder.
        return _NO_ARGUMENTS
    try:
        document = {
            "args": [
                _encode(value, f"args[{index}]", 0)
                for index, value in enumerate(args)
            ],
            "kwargs": {
                _check_text(key, "kwargs"): _encode(value, repr(key), 0)
                for key, value in kwargs.items()
            },
        }
    except _RefusedError as refused:
        raise JobArgumentError(refused.path, refused.detail) from None
    except RecursionError:
        raise JobArgumentError("args", "value is nested too deeply") from None
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def decode_arguments(text: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Decode what :func:`encode_arguments` wrote into ``(args, kwargs)``.

    Raises:
        ValueError: the stored document is damaged.
    """
    if text == _NO_ARGUMENTS:
        # A call without arguments, the most common job: no JSON to parse.
        return (), {}
    try:
        document = json.loads(text)
        args = document["args"]
        kwargs = document["kwargs"]
        if type(args) is not list or type(kwargs) is not dict:
            raise TypeError("args must be a list and kwargs an object")
        decoded = {key: _decode(value) for key, value in kwargs.items()}
        return tuple(_decode(args)), decoded
    except (TypeError, KeyError, IndexError, ImportError, AttributeError) as e:
        raise ValueError(f"stored arguments cannot be decoded: {e}") from e
    except ValueError as error:
        raise ValueError(
            f"stored arguments cannot be decoded: {error}"
        ) from error
