"""The statements of queries.sql as the PostgreSQL storage sends them."""

from __future__ import annotations

import pytest

from backburner.storage.postgres import storage
from backburner.storage.postgres.queries import positional


def test_positional_numbers_each_name_in_the_order_given() -> None:
    numbered = positional(
        "own_job", ("queue", "id", "function", "arguments", "created_at")
    )

    assert b"%(" not in numbered
    assert b"WHERE id = $2::bigint" in numbered
    assert b"AND function = $3::text" in numbered
    assert b"AND arguments = $4::text" in numbered
    assert b"AND queue = $1::text" in numbered
    assert b"AND created_at = $5::timestamptz" in numbered


@pytest.mark.parametrize(
    "order",
    [
        ("id", "function", "arguments", "queue"),
        ("id", "function", "arguments", "queue", "created_at", "extra"),
        ("id", "id", "function", "arguments", "queue", "created_at"),
    ],
)
def test_an_order_that_does_not_match_the_placeholders_is_refused(
    order: tuple[str, ...],
) -> None:
    with pytest.raises(ValueError, match="do not match"):
        positional("own_job", order)


@pytest.mark.parametrize(
    ("statement", "created_at_uses"),
    [
        # created_at (7th) fills two columns of the job...
        (storage._CREATE_ONE, 2),
        # ... and, in a hand-off, its history row's time and its NOTIFY:
        # one number for all of them.
        (storage._CREATE_HANDOFF, 4),
    ],
)
def test_every_parameter_of_the_one_statement_enqueue_is_numbered(
    statement: bytes, created_at_uses: int
) -> None:
    assert b"%" not in statement
    assert b"$16::text" in statement
    assert b"$17" not in statement
    assert statement.count(b"$7::timestamptz") == created_at_uses
