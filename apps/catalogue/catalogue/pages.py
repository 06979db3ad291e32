"""The HTML pages: server-rendered shells, each driven by one ES module.

The pages hold no data: each loads ``/static/pages/<name>.js``, which
fetches from the API under the page's cancellation scope
(``/static/scope.js``). No build step: plain modules and CSS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from catalogue.bounds import RowId

__all__ = ["router"]

_TEMPLATES = Jinja2Templates(
    directory=Path(__file__).resolve().parent / "templates"
)
router = APIRouter(include_in_schema=False)

_PAGES = {
    "/": ("products", "Products"),
    "/products/new": ("product", "New product"),
    "/categories": ("categories", "Categories"),
    "/signup": ("signup", "Sign up"),
    "/signin": ("signin", "Sign in"),
    "/confirm": ("confirm", "Confirm your phone and email"),
    "/outbox": ("outbox", "Outbox"),
    "/export": ("export", "Export"),
}


def _render(request: Request, page: str, title: str) -> HTMLResponse:
    development = request.app.state.settings.development
    return _TEMPLATES.TemplateResponse(
        request,
        f"{page}.html",
        {"page": page, "title": title, "development": development},
    )


def _page_route(
    page: str, title: str
) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def show(request: Request) -> HTMLResponse:
        return _render(request, page, title)

    show.__name__ = f"page_{page}"
    return show


for _path, (_page, _title) in _PAGES.items():
    router.add_api_route(
        _path,
        _page_route(_page, _title),
        methods=["GET"],
        response_class=HTMLResponse,
    )


@router.get("/products/{product_id}", response_class=HTMLResponse)
async def product_page(request: Request, product_id: RowId) -> HTMLResponse:
    """The product editor for an existing product."""
    return _render(request, "product", "Edit product")


@router.get("/favicon.ico")
async def favicon() -> RedirectResponse:
    """Browsers ask for it; the icon lives with the static files."""
    return RedirectResponse("/static/favicon.svg")
