"""The JSON API, called through httpx against the app on real SQLite."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from catalogue.models import Code, Message, User

from .conftest import PASSWORD, services_of, sign_up

pytestmark = pytest.mark.timeout(60)


# -- categories -----------------------------------------------------------


async def test_a_category_goes_through_create_read_update_delete(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    created = await api_client.post(
        "/api/categories", json={"name": "  Toys  ", "colour": "#AABBCC"}
    )
    assert created.status_code == 201
    category = created.json()
    assert category["name"] == "Toys"
    assert category["colour"] == "#aabbcc"

    url = f"/api/categories/{category['id']}"
    assert (await api_client.get(url)).json()["name"] == "Toys"
    updated = await api_client.put(
        url, json={"name": "Games", "colour": "#000000"}
    )
    assert updated.status_code == 200
    assert updated.json()["name"] == "Games"

    assert (await api_client.delete(url)).status_code == 204
    assert (await api_client.get(url)).status_code == 404
    assert (await api_client.delete(url)).status_code == 404


async def test_a_duplicate_category_name_is_a_409_on_the_name_field(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    answer = await api_client.post(
        "/api/categories", json={"name": "kitchen", "colour": "#112233"}
    )
    assert answer.status_code == 409
    assert "exists" in answer.json()["fields"]["name"]


async def test_invalid_category_input_names_each_field(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    answer = await api_client.post(
        "/api/categories", json={"name": "   ", "colour": "red"}
    )
    assert answer.status_code == 422
    fields = answer.json()["fields"]
    assert fields["name"] == "enter a name"
    assert "#3366cc" in fields["colour"]


async def test_categories_list_by_page_with_search_and_counts(
    api_client: httpx.AsyncClient,
) -> None:
    page = (await api_client.get("/api/categories?per_page=4")).json()
    assert page["total"] == 6
    assert page["pages"] == 2
    assert len(page["items"]) == 4
    found = (await api_client.get("/api/categories?q=GARD")).json()
    assert [c["name"] for c in found["items"]] == ["Garden"]
    assert found["items"][0]["products"] == 48


async def test_changing_categories_needs_a_signed_in_user(
    api_client: httpx.AsyncClient,
) -> None:
    answer = await api_client.post(
        "/api/categories", json={"name": "Toys", "colour": "#aabbcc"}
    )
    assert answer.status_code == 401
    assert (await api_client.delete("/api/categories/1")).status_code == 401


# -- products -------------------------------------------------------------


async def _a_category_id(client: httpx.AsyncClient) -> int:
    page = (await client.get("/api/categories?q=Office")).json()
    category_id: int = page["items"][0]["id"]
    return category_id


async def test_a_product_goes_through_create_read_update_delete(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    office = await _a_category_id(api_client)
    created = await api_client.post(
        "/api/products",
        json={
            "name": "Paper tray",
            "price": "12.5",
            "description": "Holds paper.",
            "category_id": office,
        },
    )
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["price"] == "12.50"
    assert product["category"]["name"] == "Office"

    url = f"/api/products/{product['id']}"
    assert (await api_client.get(url)).json()["name"] == "Paper tray"
    changed = await api_client.put(
        url, json={"name": "Paper tray XL", "price": 14, "category_id": None}
    )
    assert changed.status_code == 200
    assert changed.json()["category"] is None
    assert changed.json()["price"] == "14.00"

    assert (await api_client.delete(url)).status_code == 204
    assert (await api_client.get(url)).status_code == 404


async def test_a_malformed_json_body_is_a_422_on_the_body(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)

    bad = await api_client.post(
        "/api/products",
        content=b'{"name": "Kettle", ',
        headers={"content-type": "application/json"},
    )

    assert bad.status_code == 422
    fields = bad.json()["fields"]
    assert list(fields) == ["body"]
    assert fields["body"].startswith("malformed JSON at character 19")
    assert bad.json()["detail"].startswith("invalid input (body: malformed")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/api/categories",
            '{"name": "\\ud800", "colour": "#000000"}',
            "name",
        ),
        ("/api/products", '{"name": "Kettle\\udfff", "price": 1}', "name"),
        ("/api/auth/signin", '{"email": "\\ud800", "password": "x"}', "email"),
        (
            "/api/auth/signin",
            '{"email": "a@b.c", "password": "\\ud800"}',
            "password",
        ),
    ],
)
async def test_a_lone_surrogate_in_a_json_string_is_a_422_on_its_field(
    api_client: httpx.AsyncClient, path: str, body: str, field: str
) -> None:
    # JSON may spell "\ud800"; Python decodes it into text with no UTF-8
    # form, which the database driver and the password hasher failed on
    # with a 500.
    await sign_up(api_client)

    answer = await api_client.post(
        path, content=body, headers={"content-type": "application/json"}
    )

    assert answer.status_code == 422
    assert "not valid Unicode" in answer.json()["fields"][field]


async def test_product_input_errors_are_4xx_with_field_messages(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    bad = await api_client.post(
        "/api/products", json={"name": "", "price": "-1.999"}
    )
    assert bad.status_code == 422
    assert set(bad.json()["fields"]) == {"name", "price"}

    taken = await api_client.post(
        "/api/products", json={"name": "bamboo KETTLE", "price": 1}
    )
    assert taken.status_code == 409
    assert taken.json()["fields"] == {
        "name": "a product with this name exists"
    }

    orphan = await api_client.post(
        "/api/products", json={"name": "Lost", "price": 1, "category_id": 999}
    )
    assert orphan.status_code == 422
    assert "category_id" in orphan.json()["fields"]

    not_json = await api_client.post(
        "/api/products",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert not_json.status_code == 422


async def test_renaming_a_product_onto_another_name_is_refused(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    first = (await api_client.get("/api/products?q=Bamboo kettle")).json()
    other = (await api_client.get("/api/products?q=Oak kettle")).json()
    url = f"/api/products/{first['items'][0]['id']}"
    answer = await api_client.put(
        url, json={"name": other["items"][0]["name"], "price": 3}
    )
    assert answer.status_code == 409


async def test_products_list_by_page_with_search_and_category(
    api_client: httpx.AsyncClient,
) -> None:
    page = (await api_client.get("/api/products?per_page=10&page=2")).json()
    assert page["total"] == 288
    assert page["page"] == 2
    assert len(page["items"]) == 10
    names = [p["name"] for p in page["items"]]
    assert names == sorted(names)

    kettles = (await api_client.get("/api/products?q=KETTLE")).json()
    assert kettles["total"] == 12
    office = await _a_category_id(api_client)
    in_office = (
        await api_client.get(f"/api/products?category_id={office}&q=lamp")
    ).json()
    assert in_office["total"] == 12
    assert {p["category"]["name"] for p in in_office["items"]} == {"Office"}

    # Wildcards are searched for as themselves.
    assert (await api_client.get("/api/products?q=%25")).json()["total"] == 0


async def test_listing_parameters_are_checked(
    api_client: httpx.AsyncClient,
) -> None:
    answer = await api_client.get("/api/products?page=0&per_page=1000")
    assert answer.status_code == 422
    assert set(answer.json()["fields"]) == {"page", "per_page"}


# -- identity ---------------------------------------------------------------


async def test_sign_up_signs_in_and_stores_an_argon2_hash(
    api_client: httpx.AsyncClient,
) -> None:
    body = await sign_up(api_client, email="Bob@Example.com")
    assert body["user"]["email"] == "bob@example.com"
    assert body["user"]["phone_confirmed"] is False
    me = await api_client.get("/api/me")
    assert me.status_code == 200
    assert me.json()["email"] == "bob@example.com"

    services = services_of(api_client.app)  # type: ignore[attr-defined]
    async with services.db.sessions() as session:
        stored = await session.scalar(
            select(User.password_hash).where(User.email == "bob@example.com")
        )
    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_the_session_cookie_is_http_only(
    api_client: httpx.AsyncClient,
) -> None:
    response = await api_client.post(
        "/api/auth/signup",
        json={
            "email": "c@example.com",
            "password": PASSWORD,
            "phone": "+14155550123",
        },
    )
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()


async def test_sign_up_refuses_bad_input_field_by_field(
    api_client: httpx.AsyncClient,
) -> None:
    answer = await api_client.post(
        "/api/auth/signup",
        json={"email": "nope", "password": "short", "phone": "12"},
    )
    assert answer.status_code == 422
    assert set(answer.json()["fields"]) == {"email", "password", "phone"}

    await sign_up(api_client)
    again = await api_client.post(
        "/api/auth/signup",
        json={
            "email": "ann@example.com",
            "password": PASSWORD,
            "phone": "+14155550123",
        },
    )
    assert again.status_code == 409
    assert "email" in again.json()["fields"]


async def test_the_session_says_who_is_signed_in(
    api_client: httpx.AsyncClient,
) -> None:
    nobody = await api_client.get("/api/auth/session")
    assert nobody.status_code == 200
    assert nobody.json() == {"user": None}
    await sign_up(api_client)
    someone = (await api_client.get("/api/auth/session")).json()
    assert someone["user"]["email"] == "ann@example.com"


async def test_sign_in_sign_out_and_the_bearer_header(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    await api_client.post("/api/auth/signout")
    api_client.cookies.clear()
    assert (await api_client.get("/api/me")).status_code == 401

    wrong = await api_client.post(
        "/api/auth/signin",
        json={"email": "ann@example.com", "password": "wrong password"},
    )
    assert wrong.status_code == 401
    assert "password" in wrong.json()["fields"]
    unknown = await api_client.post(
        "/api/auth/signin",
        json={"email": "nobody@example.com", "password": PASSWORD},
    )
    assert unknown.status_code == 401

    right = await api_client.post(
        "/api/auth/signin",
        json={"email": "ANN@example.com", "password": PASSWORD},
    )
    assert right.status_code == 200
    token = right.json()["token"]
    api_client.cookies.clear()
    bearer = {"authorization": f"Bearer {token}"}
    me = await api_client.get("/api/me", headers=bearer)
    assert me.json()["email"] == "ann@example.com"
    forged = {"authorization": f"Bearer {token[:-2]}xx"}
    assert (await api_client.get("/api/me", headers=forged)).status_code == 401


# -- confirmation codes -----------------------------------------------------


async def _messages(client: httpx.AsyncClient, channel: str) -> list[Any]:
    services = services_of(client.app)  # type: ignore[attr-defined]
    async with services.db.sessions() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.channel == channel)
            .order_by(Message.id)
        )
        return list(rows)


def _code_in(text: str) -> str:
    match = re.search(r"#(\d{6})$", text) or re.search(r"(\d{6})", text)
    assert match, text
    return match.group(1)


async def test_the_sms_ends_with_a_web_otp_line_and_confirms_the_phone(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    [sms] = await _messages(api_client, "sms")
    last_line = sms.body.splitlines()[-1]
    assert re.fullmatch(r"@127\.0\.0\.1 #\d{6}", last_line)
    assert sms.recipient == "+14155550123"

    wrong = "000000" if _code_in(sms.body) != "000000" else "111111"
    refused = await api_client.post(
        "/api/me/phone/confirm", json={"code": wrong}
    )
    assert refused.status_code == 400
    assert "code" in refused.json()["fields"]
    confirmed = await api_client.post(
        "/api/me/phone/confirm", json={"code": _code_in(sms.body)}
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["phone_confirmed"] is True
    used = await api_client.post(
        "/api/me/phone/confirm", json={"code": _code_in(sms.body)}
    )
    assert used.status_code == 400
    assert "used already" in used.json()["fields"]["code"]


async def test_the_email_code_confirms_the_address(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    [mail] = await _messages(api_client, "email")
    assert mail.recipient == "ann@example.com"
    confirmed = await api_client.post(
        "/api/me/email/confirm", json={"code": _code_in(mail.body)}
    )
    assert confirmed.json()["email_confirmed"] is True


async def test_a_new_code_is_rate_limited_per_user(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    soon = await api_client.post("/api/me/phone/code")
    assert soon.status_code == 429
    assert 0 < int(soon.headers["retry-after"]) <= 30

    # Another user is not held back by the first one's codes.
    api_client.cookies.clear()
    await sign_up(api_client, email="dan@example.com")
    services = services_of(api_client.app)  # type: ignore[attr-defined]
    async with services.db.sessions() as session:
        dan = await session.scalar(
            select(User.id).where(User.email == "dan@example.com")
        )
        # Dan's codes were made a minute ago: he may ask again.
        codes = await session.scalars(select(Code).where(Code.user_id == dan))
        for code in codes:
            code.created_at -= timedelta(minutes=1)
        await session.commit()
    again = await api_client.post("/api/me/phone/code")
    assert again.status_code == 202, again.text
    assert len(await _messages(api_client, "sms")) == 3


async def test_email_codes_are_limited_and_end_with_confirmation(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    soon = await api_client.post("/api/me/email/code")
    assert soon.status_code == 429
    [mail] = await _messages(api_client, "email")
    await api_client.post(
        "/api/me/email/confirm", json={"code": _code_in(mail.body)}
    )
    done = await api_client.post("/api/me/email/code")
    assert done.status_code == 409
    assert "confirmed already" in done.json()["detail"]


async def test_codes_need_a_signed_in_user(
    api_client: httpx.AsyncClient,
) -> None:
    for path in ("phone/code", "email/code"):
        answer = await api_client.post(f"/api/me/{path}")
        assert answer.status_code == 401
    confirm = await api_client.post(
        "/api/me/phone/confirm", json={"code": "123456"}
    )
    assert confirm.status_code == 401


async def test_five_wrong_codes_use_the_code_up(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    [sms] = await _messages(api_client, "sms")
    right = _code_in(sms.body)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for _ in range(5):
        answer = await api_client.post(
            "/api/me/phone/confirm", json={"code": wrong}
        )
        assert (
            answer.json()["fields"]["code"] == "this is not the code we sent"
        )
    late = await api_client.post("/api/me/phone/confirm", json={"code": right})
    assert late.status_code == 400
    assert "too many" in late.json()["fields"]["code"]


async def test_an_expired_code_is_refused(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    [sms] = await _messages(api_client, "sms")
    services = services_of(api_client.app)  # type: ignore[attr-defined]
    async with services.db.sessions() as session:
        await session.execute(update(Code).values(expires_at=Code.created_at))
        await session.commit()
    answer = await api_client.post(
        "/api/me/phone/confirm", json={"code": _code_in(sms.body)}
    )
    assert answer.status_code == 400
    assert "expired" in answer.json()["fields"]["code"]


async def test_codes_live_two_minutes(settings: Any) -> None:
    assert settings.code_lifetime == 120


async def test_a_malformed_code_is_a_422(
    api_client: httpx.AsyncClient,
) -> None:
    await sign_up(api_client)
    answer = await api_client.post(
        "/api/me/phone/confirm", json={"code": "12ab"}
    )
    assert answer.status_code == 422
    assert answer.json()["fields"]["code"] == "the code has six digits"


# -- outbox, exports, pages ------------------------------------------------


async def test_the_outbox_needs_a_user(api_client: httpx.AsyncClient) -> None:
    assert (await api_client.get("/api/outbox")).status_code == 401
    await sign_up(api_client)
    answer = await api_client.get("/api/outbox")
    assert answer.status_code == 200
    assert answer.json() == []


async def test_exports_are_listed_for_their_owner_only(
    api_client: httpx.AsyncClient,
) -> None:
    assert (await api_client.get("/api/exports")).status_code == 401
    await sign_up(api_client)
    started = (await api_client.post("/api/exports")).json()
    assert started["status"] == "queued"
    assert started["download"] is None
    mine = (await api_client.get("/api/exports")).json()
    assert [e["id"] for e in mine] == [started["id"]]
    early = await api_client.get(f"/api/exports/{started['id']}/file")
    assert early.status_code == 409  # no worker runs in these tests

    api_client.cookies.clear()
    await sign_up(api_client, email="eve@example.com")
    assert (await api_client.get("/api/exports")).json() == []


async def test_pages_are_served_with_a_strict_csp(
    api_client: httpx.AsyncClient,
) -> None:
    for path in ("/", "/categories", "/signup", "/products/1", "/export"):
        page = await api_client.get(path)
        assert page.status_code == 200, path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert '<script type="module"' in page.text
