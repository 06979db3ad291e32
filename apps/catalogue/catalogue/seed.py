"""Demo data for a fresh development database.

On first start in development the catalogue gets a few categories and
a few hundred products, and an admin account allowed to manage jobs,
whose password is made up and logged once (never in production).
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets

from sqlalchemy import func, select

from backburner import CancellationToken
from catalogue.identity import SignUp, create_user
from catalogue.models import Category, Product, User
from catalogue.services import Services

__all__ = ["ADMIN_EMAIL", "seed_demo"]

_log = logging.getLogger("catalogue.seed")

ADMIN_EMAIL = "admin@example.com"
ADMIN_PHONE = "+15005550006"

_CATEGORIES = {
    "Kitchen": "#d9480f",
    "Garden": "#2b8a3e",
    "Office": "#1864ab",
    "Outdoor": "#5f3dc4",
    "Lighting": "#e67700",
    "Storage": "#495057",
}
_ADJECTIVES = (
    "Sturdy",
    "Compact",
    "Folding",
    "Classic",
    "Bamboo",
    "Steel",
    "Linen",
    "Oak",
    "Recycled",
    "Travel",
    "Quiet",
    "Bright",
)
_NOUNS = {
    "Kitchen": ("kettle", "colander", "spice rack", "chopping board"),
    "Garden": ("trowel", "watering can", "planter", "hose reel"),
    "Office": ("desk lamp", "notebook", "stapler", "monitor stand"),
    "Outdoor": ("tent", "camping stool", "lantern", "cool box"),
    "Lighting": ("floor lamp", "pendant", "wall light", "bulb set"),
    "Storage": ("crate", "shoe rack", "shelf", "drawer unit"),
}


async def seed_demo(services: Services, token: CancellationToken) -> None:
    """Fill an empty database with demo data and the admin account."""
    async with services.db.session(token) as session:
        users = await session.scalar(select(func.count(User.id)))
        products = await session.scalar(select(func.count(Product.id)))
    if not products:
        await _seed_catalogue(services, token)
    if not users:
        password = secrets.token_urlsafe(12)
        form = SignUp(email=ADMIN_EMAIL, password=password, phone=ADMIN_PHONE)
        await create_user(services, token, form, can_manage_jobs=True)
        # Development only, and only once: the account is new.
        _log.warning(
            "demo admin created: sign in as %s with password %s "
            "(shown once; development only)",
            ADMIN_EMAIL,
            password,
            extra={"event": "demo.admin_created"},
        )


async def _seed_catalogue(
    services: Services, token: CancellationToken
) -> None:
    chance = random.Random(7)  # the same demo catalogue every time
    async with services.db.session(token) as session:
        categories = {
            name: Category(name=name, colour=colour)
            for name, colour in _CATEGORIES.items()
        }
        session.add_all(categories.values())
        await session.flush()
        for (name, nouns), adjective in itertools.product(
            _NOUNS.items(), _ADJECTIVES
        ):
            for noun in nouns:
                session.add(
                    Product(
                        name=f"{adjective} {noun}",
                        price_cents=chance.randrange(199, 19999),
                        description=f"A {adjective.lower()} {noun} "
                        f"for everyday use.",
                        category_id=categories[name].id,
                    )
                )
        await session.commit()
