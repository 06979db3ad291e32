"""Products: create, read, update, delete, paginated search.

The listing is where request cancellation shows: a search the browser
abandons (the user typed on, or left the page) is interrupted in the
database, and the server records it. In development, ``slow=<seconds>``
adds a statement that keeps the database busy that long first, so that
there is time to leave.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field, field_validator
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from backburner import OperationCancelled
from backburner.web.fastapi import RequestCancellation
from catalogue.activity import Activity
from catalogue.bounds import PageNumber, RowId, RowIdField, RowIdFilter
from catalogue.errors import ApiError, not_found
from catalogue.forms import Form
from catalogue.identity import CurrentUser, ServicesDep
from catalogue.listing import Page, contains, page_of
from catalogue.models import Category, Product
from catalogue.names import tidy_name

__all__ = ["ProductForm", "router"]

_log = logging.getLogger("catalogue.products")
router = APIRouter(prefix="/api/products", tags=["products"])


class ProductForm(Form):
    """A product as the editor sends it."""

    name: str
    price: Decimal = Field(ge=0, le=1_000_000, decimal_places=2)
    description: str = Field(default="", max_length=2000)
    category_id: RowIdField | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return tidy_name(value, 120)


def product_view(
    product: Product, category: Category | None
) -> dict[str, Any]:
    """What the API shows of a product."""
    return {
        "id": product.id,
        "name": product.name,
        "price": f"{product.price_cents / 100:.2f}",
        "description": product.description,
        "category": None
        if category is None
        else {
            "id": category.id,
            "name": category.name,
            "colour": category.colour,
        },
    }


_DUPLICATE = ApiError(
    409,
    "a product with this name exists",
    {"name": "a product with this name exists"},
)


async def _check(
    session: AsyncSession, form: ProductForm, own_id: int | None = None
) -> Category | None:
    found = await session.scalar(
        select(Product.id).where(func.lower(Product.name) == form.name.lower())
    )
    if found is not None and found != own_id:
        raise _DUPLICATE
    if form.category_id is None:
        return None
    category = await session.get(Category, form.category_id)
    if category is None:
        raise ApiError(
            422,
            "no such category",
            {"category_id": "this category does not exist (any more)"},
        )
    return category


def _fill(product: Product, form: ProductForm) -> None:
    product.name = form.name
    product.price_cents = int(form.price * 100)
    product.description = form.description
    product.category_id = form.category_id


async def _commit(session: AsyncSession) -> None:
    try:
        await session.commit()
    except IntegrityError:
        raise _DUPLICATE from None


def _activity(request: Request) -> Activity:
    activity: Activity = request.app.state.activity
    return activity


@router.get("")
async def list_products(
    request: Request,
    services: ServicesDep,
    token: RequestCancellation,
    q: Annotated[str, Query(max_length=100)] = "",
    category_id: RowIdFilter = None,
    page: PageNumber = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    slow: Annotated[float, Query(ge=0, le=120)] = 0,
) -> Page:
    """Products by name, filtered by search text and category."""
    if slow and not services.settings.development:
        raise ApiError(400, "slow is for development", {"slow": "not here"})
    query = select(Product, Category).outerjoin(
        Category, Category.id == Product.category_id
    )
    if q:
        query = query.where(
            or_(contains(Product.name, q), contains(Product.description, q))
        )
    if category_id is not None:
        query = query.where(Product.category_id == category_id)
    activity = _activity(request)
    started = time.monotonic()
    activity.record("search.started", q=q, slow=slow)
    try:
        async with services.db.session(token) as session:
            if slow:
                await services.db.slow_statement(session, slow)
            result = await page_of(
                session,
                query.order_by(Product.name),
                page,
                per_page,
                lambda row: product_view(row[0], row[1]),
            )
    except (OperationCancelled, asyncio.CancelledError):
        elapsed = time.monotonic() - started
        activity.record(
            "search.cancelled",
            q=q,
            slow=slow,
            elapsed=elapsed,
            reason=token.reason,
        )
        _log.info(
            "search %r cancelled after %.2f s (%s)",
            q,
            elapsed,
            token.reason or "server stopping",
            extra={"event": "search.cancelled", "elapsed": elapsed},
        )
        raise
    activity.record("search.finished", q=q, slow=slow)
    return result


@router.post("", status_code=201)
async def create_product(
    form: ProductForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Add a product."""
    async with services.db.session(token) as session:
        category = await _check(session, form)
    product = Product()
    _fill(product, form)
    async with services.db.writing() as session:
        session.add(product)
        await _commit(session)
    return product_view(product, category)


@router.get("/{product_id}")
async def get_product(
    product_id: RowId, services: ServicesDep, token: RequestCancellation
) -> dict[str, Any]:
    """One product."""
    async with services.db.session(token) as session:
        product = await session.get(Product, product_id)
        if product is None:
            raise not_found("product")
        category = (
            await session.get(Category, product.category_id)
            if product.category_id is not None
            else None
        )
    return product_view(product, category)


@router.put("/{product_id}")
async def update_product(
    product_id: RowId,
    form: ProductForm,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Replace a product's fields."""
    async with services.db.session(token) as session:
        category = await _check(session, form, product_id)
    async with services.db.writing() as session:
        product = await session.get(Product, product_id)
        if product is None:
            raise not_found("product")
        _fill(product, form)
        await _commit(session)
    return product_view(product, category)


@router.delete("/{product_id}", status_code=204)
async def delete_product(
    product_id: RowId,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> None:
    """Delete a product."""
    token.raise_if_cancellation_requested()
    async with services.db.writing() as session:
        product = await session.get(Product, product_id)
        if product is None:
            raise not_found("product")
        await session.delete(product)
        await session.commit()
