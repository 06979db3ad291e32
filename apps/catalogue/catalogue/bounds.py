"""Bounds on the integers the API accepts.

SQLite and PostgreSQL store row ids as signed 64-bit integers; a larger
number in a path or a query would reach the driver and fail there (a
500). Declaring the range turns it into a 422 with a field message.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import Field

MAX_ROW_ID = 2**63 - 1
# Far beyond any real catalogue, and small enough that page * per_page
# stays a 64-bit OFFSET.
MAX_PAGE = 1_000_000

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
"""A row id in a path."""

RowIdField = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
"""A row id in a request body."""

RowIdFilter = Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)]
"""An optional row id in a query string."""

PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
"""A 1-based page number in a query string."""
