"""Paginated listings with a text search, shared by the API routes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["Page", "contains", "page_of"]


Page = dict[str, Any]
"""One page of a listing: ``items``, ``total``, ``page``, ``per_page``,
``pages``."""


def contains(column: Any, text: str) -> ColumnElement[bool]:
    """Case-insensitive "``column`` contains ``text``", literally.

    ``%`` and ``_`` in the search text are matched as themselves.
    """
    escaped = (
        text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    )
    result: ColumnElement[bool] = func.lower(column).like(
        f"%{escaped.lower()}%", escape="\\"
    )
    return result


async def page_of(
    session: AsyncSession,
    query: Any,
    page: int,
    per_page: int,
    view: Callable[[Any], dict[str, Any]],
) -> Page:
    """Run ``query`` for one page and count all its rows."""
    total = await session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())
    )
    rows = await session.execute(
        query.limit(per_page).offset((page - 1) * per_page)
    )
    total = total or 0
    return {
        "items": [view(row) for row in rows.all()],
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, -(-total // per_page)),
    }
