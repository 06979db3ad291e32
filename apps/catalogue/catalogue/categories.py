"""Categories: create, read, update, delete, paginated listing, search.

Every route takes its request's cancellation token and runs its
reads and checks in a session that obeys it; the write itself runs in
``db.writing()``, so a save that has begun is not lost halfway to a
browser that left.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query
from pydantic import field_validator
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backburner.web.fastapi import RequestCancellation
from catalogue.bounds import PageNumber, RowId
from catalogue.errors import ApiError, not_found
from catalogue.forms import Form
from catalogue.identity import CurrentUser, ServicesDep
from catalogue.listing import Page, contains, page_of
from catalogue.models import Category, Product
from catalogue.names import tidy_name

__all__ = ["CategoryForm", "category_view", "router"]

router = APIRouter(prefix="/api/categories", tags=["categories"])
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class CategoryForm(Form):
    """A category as the editor sends it."""

    name: str
    colour: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return tidy_name(value, 80)

    @field_validator("colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.fullmatch(value):
            raise ValueError("use a colour like #3366cc")
        return value.lower()


def category_view(category: Category, products: int = 0) -> dict[str, Any]:
    """What the API shows of a category."""
    return {
        "id": category.id,
        "name": category.name,
        "colour": category.colour,
        "products": products,
    }


_DUPLICATE = ApiError(
    409,
    "a category with this name exists",
    {"name": "a category with this name exists"},
)


async def _check_unique(
    session: AsyncSession, name: str, own_id: int | None = None
) -> None:
    query = select(Category.id).where(
        func.lower(Category.name) == name.lower()
    )
    found = await session.scalar(query)
    if found is not None and found != own_id:
        raise _DUPLICATE


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError:
        # Another request took the name between the check and the write.
        raise _DUPLICATE from None


@router.get("")
async def list_categories(
    services: ServicesDep,
    token: RequestCancellation,
    q: Annotated[str, Query(max_length=100)] = "",
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page:
    """Categories by name, with their product counts."""
    counts = (
        select(Product.category_id, func.count().label("n"))
        .group_by(Product.category_id)
        .subquery()
    )
    query = select(Category, func.coalesce(counts.c.n, 0)).outerjoin(
        counts, counts.c.category_id == Category.id
    )
    if q:
        query = query.where(contains(Category.name, q))
    async with services.db.session(token) as session:
        return await page_of(
            session,
            query.order_by(Category.name),
            page,
            per_page,
            lambda row: category_view(row[0], row[1]),
        )


@router.post("", status_code=201)
async def create_category(
    form: CategoryForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Add a category."""
    async with services.db.session(token) as session:
        await _check_unique(session, form.name)
    category = Category(name=form.name, colour=form.colour)
    async with services.db.writing() as session:
        session.add(category)
        await _commit(session)
    return category_view(category)


@router.get("/{category_id}")
async def get_category(
    category_id: RowId, services: ServicesDep, token: RequestCancellation
) -> dict[str, Any]:
    """One category."""
    async with services.db.session(token) as session:
        category = await session.get(Category, category_id)
        if category is None:
            raise not_found("category")
        products = await session.scalar(
            select(func.count()).where(Product.category_id == category_id)
        )
    return category_view(category, products or 0)


@router.put("/{category_id}")
async def update_category(
    category_id: RowId,
    form: CategoryForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Rename or recolour a category."""
    async with services.db.session(token) as session:
        await _check_unique(session, form.name, category_id)
    async with services.db.writing() as session:
        category = await session.get(Category, category_id)
        if category is None:
            raise not_found("category")
        category.name = form.name
        category.colour = form.colour
        await _commit(session)
    return category_view(category)


@router.delete("/{category_id}", status_code=204)
async def delete_category(
    category_id: RowId,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> None:
    """Delete a category; its products stay, without a category."""
    token.raise_if_cancellation_requested()
    async with services.db.writing() as session:
        result = await session.execute(
            delete(Category).where(Category.id == category_id)
        )
        if not cast(CursorResult[Any], result).rowcount:
            raise not_found("category")
        await session.commit()
