"""Stored arguments: the shortcut for calls without any."""

from __future__ import annotations

import io
import json
import struct
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from backburner.jobs.errors import JobArgumentError
from backburner.jobs.serializer import (
    decode_arguments,
    encode_arguments,
    encode_json,
)


def test_a_call_without_arguments_decodes_to_fresh_empty_ones() -> None:
    stored = encode_arguments((), {})

    args, kwargs = decode_arguments(stored)
    kwargs["changed"] = True  # a job may change what it was given

    assert args == ()
    assert decode_arguments(stored) == ((), {})


def test_a_call_without_arguments_is_stored_as_the_encoder_writes_it() -> None:
    written = json.dumps({"args": [], "kwargs": {}}, separators=(",", ":"))

    assert encode_arguments((), {}) == written
    assert encode_arguments([], {}) == written


def test_the_same_document_spelt_otherwise_decodes_the_same() -> None:
    assert decode_arguments(' {"kwargs": {}, "args": []}') == ((), {})
    assert decode_arguments('{"args":[1],"kwargs":{"a":"b"}}') == (
        (1,),
        {"a": "b"},
    )


def test_a_deeply_nested_argument_is_refused_with_a_short_path() -> None:
    nested: list[object] = []
    for _ in range(3000):
        nested = [nested]

    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((nested,), {})

    message = str(refused.value)
    assert message.startswith("argument args[0][0][0]")
    assert "...: nested deeper than 64 levels" in message
    assert len(message) < 120


def test_a_refused_value_a_few_levels_down_keeps_its_whole_path() -> None:
    value = {"orders": [{"lines": [{"sku": "a\x00b"}]}]}

    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((), {"batch": value})

    assert str(refused.value).startswith(
        "argument 'batch'['orders'][0]['lines'][0]['sku']: "
    )


def test_an_integer_too_long_to_write_is_refused_by_name() -> None:
    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((), {"n": [1, {"x": -(10**4300)}]})

    assert str(refused.value) == (
        "argument 'n'[1]['x']: integers of more than 4300 digits cannot be "
        "stored"
    )


def test_long_integers_within_the_limit_round_trip() -> None:
    longest = 10**4300 - 1
    stored = encode_arguments((longest, -longest, 2**14_001), {})

    assert decode_arguments(stored) == ((longest, -longest, 2**14_001), {})


@pytest.fixture
def restore_int_limit() -> Iterator[None]:
    before = sys.get_int_max_str_digits()
    yield
    sys.set_int_max_str_digits(before)


@pytest.mark.usefixtures("restore_int_limit")
def test_an_argument_over_a_lowered_limit_is_refused_by_name() -> None:
    sys.set_int_max_str_digits(640)

    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((10**640,), {})

    assert str(refused.value) == (
        "argument args[0]: integers of more than 640 digits cannot be stored"
    )
    assert decode_arguments(encode_arguments((10**640 - 1,), {})) == (
        (10**640 - 1,),
        {},
    )


@pytest.mark.parametrize(
    ("process_limit", "refused_over"),
    [(0, 4300), (10_000, 4300), (4300, 4300), (4250, 4250)],
)
@pytest.mark.usefixtures("restore_int_limit")
def test_the_default_int_limit_applies_unless_the_process_has_a_lower_one(
    process_limit: int, refused_over: int
) -> None:
    sys.set_int_max_str_digits(process_limit)
    longest = 10**refused_over - 1

    assert encode_json([longest], "result", default_int_limit=True) == [
        longest
    ]
    with pytest.raises(JobArgumentError) as refused:
        encode_json(
            {"n": -(10**refused_over)}, "result", default_int_limit=True
        )
    assert str(refused.value) == (
        f"argument result['n']: integers of more than {refused_over} digits "
        "cannot be stored"
    )
    # Only where asked: arguments keep the process's own limit.
    if process_limit == 0:
        assert encode_json(10**5000, "result") == 10**5000


@pytest.mark.parametrize(
    "moment",
    [
        # In the spring gap: this wall time does not exist in London.
        datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/London")),
        # In the autumn overlap, both folds.
        datetime(2026, 10, 25, 1, 30, tzinfo=ZoneInfo("Europe/London")),
        datetime(
            2026, 10, 25, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")
        ),
        datetime(2026, 7, 1, 12, 0, tzinfo=ZoneInfo("America/New_York")),
    ],
)
def test_zoned_datetimes_keep_their_wall_time_and_fold(
    moment: datetime,
) -> None:
    ((back,), _) = decode_arguments(encode_arguments((moment,), {}))

    assert back == moment
    assert (back.hour, back.minute, back.fold) == (
        moment.hour,
        moment.minute,
        moment.fold,
    )
    assert back.utcoffset() == moment.utcoffset()


def test_uuids_decimals_and_zones_round_trip_with_their_types() -> None:
    # Their modules are imported only when such a value is met (see the
    # serializer): a type looked up late must still be the exact type.
    values = (
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("19.990"),
        datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    )

    back, _ = decode_arguments(encode_arguments(values, {}))

    assert back == values
    assert [type(value) for value in back] == [uuid.UUID, Decimal, datetime]
    assert back[2].tzinfo is UTC


def test_a_subclass_of_a_late_imported_type_is_still_refused() -> None:
    class OrderId(uuid.UUID):
        pass

    with pytest.raises(JobArgumentError, match=r"type .*OrderId cannot"):
        encode_arguments((OrderId(int=5),), {})


_CET = timezone(timedelta(hours=1), "CET")
# Python 3.11 reads an offset under a second back as UTC.
_TINY_OFFSET = timezone(timedelta(microseconds=-7))
_ODD_OFFSET = timezone(timedelta(hours=-3, microseconds=-7))


@pytest.mark.parametrize(
    "value",
    [
        time(9, 30, tzinfo=ZoneInfo("Europe/Paris")),
        time(9, 30, tzinfo=_CET),
        time(9, 30, tzinfo=_TINY_OFFSET),
        time(9, 30, tzinfo=timezone(timedelta(hours=-3))),
        time(9, 30, 5, 123),
        datetime(2026, 1, 2, 9, 30, tzinfo=_CET),
        datetime(2026, 1, 2, 9, 30, tzinfo=_TINY_OFFSET),
        datetime(2026, 1, 2, 9, 30, tzinfo=_ODD_OFFSET),
        datetime(2026, 1, 2, 9, 30, tzinfo=timezone(timedelta(0), "Z")),
        datetime(2026, 1, 2, 9, 30, tzinfo=timezone(timedelta(seconds=-37))),
    ],
    ids=repr,
)
def test_times_and_datetimes_keep_their_zone_exactly(value: object) -> None:
    ((back,), _) = decode_arguments(encode_arguments((value,), {}))

    # Equal is not enough: a time with a ZoneInfo equals the naive one,
    # and a named zone equals the unnamed one. The repr shows them all.
    assert repr(back) == repr(value)


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        (
            '{"__bb__":"datetime","v":["2026-01-02T03:04:00+01:00",null]}',
            datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=1))),
        ),
        (
            '{"__bb__":"datetime","v":["2026-10-25T01:30:00+00:00",'
            '"Europe/London"]}',
            datetime(
                2026, 10, 25, 1, 30, fold=1, tzinfo=ZoneInfo("Europe/London")
            ),
        ),
        (
            '{"__bb__":"time","v":"01:02:00-03:00"}',
            time(1, 2, tzinfo=timezone(timedelta(hours=-3))),
        ),
        ('{"__bb__":"time","v":"01:02:00"}', time(1, 2)),
    ],
)
def test_times_stored_by_the_first_release_still_decode(
    stored: str, expected: object
) -> None:
    ((back,), _) = decode_arguments(f'{{"args":[{stored}],"kwargs":{{}}}}')

    assert repr(back) == repr(expected)


class _Brussels(tzinfo):
    """A hand-written tzinfo: it would come back as a plain offset."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=1)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "Brussels"


def test_a_tzinfo_of_another_class_is_refused_by_name() -> None:
    moment = datetime(2026, 1, 2, 9, 30, tzinfo=_Brussels())

    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((), {"at": [moment]})

    assert str(refused.value) == (
        "argument 'at'[0]: tzinfo of type _Brussels cannot be stored "
        "(use datetime.timezone or zoneinfo.ZoneInfo)"
    )
    with pytest.raises(
        JobArgumentError, match=r"^argument args\[0\]: tzinfo of type"
    ):
        encode_arguments((time(9, 30, tzinfo=_Brussels()),), {})


def test_a_zone_read_from_a_file_is_refused() -> None:
    # The smallest TZif file (version 1): one zone type, UTC+1, "ONE".
    tzif = (
        b"TZif"
        + bytes(16)
        + struct.pack(">6l", 0, 0, 0, 0, 1, 4)
        + struct.pack(">lBB", 3600, 0, 0)
        + b"ONE\x00"
    )
    # Without a key, a worker could not find the zone again.
    zone = ZoneInfo.from_file(io.BytesIO(tzif))
    moment = datetime(2026, 1, 2, 9, 30, tzinfo=zone)

    with pytest.raises(JobArgumentError) as refused:
        encode_arguments((moment,), {})

    assert str(refused.value) == (
        "argument args[0]: a ZoneInfo without a key (read from a file) "
        "cannot be stored"
    )
