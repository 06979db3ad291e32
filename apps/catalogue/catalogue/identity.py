"""Accounts: sign in and out, who is asking, who may manage jobs.

(Sign-up, which ends by sending confirmation codes, is in
:mod:`catalogue.signup`.)

A session is a token signed with the app's secret (itsdangerous), sent
in an HTTP-only, ``SameSite=Lax`` cookie and also accepted as
``Authorization: Bearer <token>`` for scripts. Passwords are hashed
with Argon2id; hashing runs in a thread so that it does not hold the
event loop.

Known limit: a session token stays valid until it expires (seven
days); signing out deletes the cookie but cannot recall a copied bearer
token. Rotating ``CATALOGUE_SECRET_KEY`` ends every session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated, Any

import phonenumbers
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from fastapi import APIRouter, Depends, Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from backburner import CancellationToken
from backburner.web.fastapi import RequestCancellation
from catalogue.errors import ApiError
from catalogue.forms import Form
from catalogue.models import User, utc_now
from catalogue.privacy import mask_email
from catalogue.services import Services

__all__ = [
    "COOKIE",
    "CurrentUser",
    "OptionalUser",
    "hash_password",
    "router",
    "services_of",
    "user_from_request",
]

_log = logging.getLogger("catalogue.identity")

COOKIE = "catalogue_session"
SESSION_AGE = 7 * 24 * 3600
_SALT = "catalogue.session"
_hasher = PasswordHasher()

router = APIRouter(prefix="/api", tags=["identity"])


def services_of(request: Request) -> Services:
    """FastAPI dependency: the process's :class:`Services`."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services_of)]


# -- passwords and tokens ------------------------------------------------


async def hash_password(password: str) -> str:
    """Hash ``password`` with Argon2id, off the event loop."""
    return await asyncio.to_thread(_hasher.hash, password)


async def password_matches(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash."""
    try:
        return await asyncio.to_thread(_hasher.verify, stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _signer(services: Services) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(services.settings.secret_key, salt=_SALT)


def issue_token(services: Services, user: User) -> str:
    """A signed session token for ``user``."""
    return _signer(services).dumps({"user": user.id})


def _user_id_of(services: Services, token: str) -> int | None:
    try:
        data = _signer(services).loads(token, max_age=SESSION_AGE)
    except BadSignature:
        return None
    user_id = data.get("user") if isinstance(data, dict) else None
    return user_id if isinstance(user_id, int) else None


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE)


async def user_from_request(
    request: Request, services: Services, token: CancellationToken
) -> User | None:
    """The signed-in user of ``request``, or ``None``.

    Raises:
        OperationCancelled: ``token`` fired during the lookup.
    """
    presented = _presented_token(request)
    if presented is None:
        return None
    user_id = _user_id_of(services, presented)
    if user_id is None:
        return None
    async with services.db.session(token) as session:
        return await session.get(User, user_id)


async def _optional_user(
    request: Request, services: ServicesDep, token: RequestCancellation
) -> User | None:
    return await user_from_request(request, services, token)


async def _current_user(
    user: Annotated[User | None, Depends(_optional_user)],
) -> User:
    if user is None:
        raise ApiError(401, "sign in first")
    return user


OptionalUser = Annotated[User | None, Depends(_optional_user)]
CurrentUser = Annotated[User, Depends(_current_user)]


def set_session_cookie(
    response: Response, services: Services, token: str
) -> None:
    """Send the session token as an HTTP-only cookie."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_AGE,
        httponly=True,
        samesite="lax",
        secure=not services.settings.development,
        path="/",
    )


# -- input ----------------------------------------------------------------


def normal_email(text: str) -> str:
    """The normalized form of an email address.

    Raises:
        ValueError: not a valid address.
    """
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    return checked.normalized.lower()


def normal_phone(text: str) -> str:
    """The E.164 form of an international phone number.

    Raises:
        ValueError: not a valid number with its country code.
    """
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise ValueError(
            "enter the number with its country code, like +44 7700 900123"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("this is not a valid phone number")
    return phonenumbers.format_number(
        number, phonenumbers.PhoneNumberFormat.E164
    )


class SignUp(Form):
    """The sign-up form."""

    email: str
    password: str
    phone: str

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        return normal_email(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        if not 10 <= len(value) <= 128:
            raise ValueError("use 10 to 128 characters")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        return normal_phone(value)


class SignIn(Form):
    """The sign-in form."""

    email: str
    password: str


def user_view(user: User) -> dict[str, Any]:
    """What the API shows of a user (to that user)."""
    return {
        "id": user.id,
        "email": user.email,
        "phone": user.phone,
        "phone_confirmed": user.phone_confirmed_at is not None,
        "email_confirmed": user.email_confirmed_at is not None,
        "can_manage_jobs": user.can_manage_jobs,
    }


# -- routes ---------------------------------------------------------------


_EMAIL_TAKEN = ApiError(
    409,
    "this email address is taken",
    {"email": "an account with this address exists; sign in"},
)


async def create_user(
    services: Services,
    token: CancellationToken,
    form: SignUp,
    *,
    can_manage_jobs: bool = False,
) -> User:
    """Store a new user.

    Raises:
        ApiError: 409 when the email address is taken.
        OperationCancelled: ``token`` fired.
    """
    password_hash = await hash_password(form.password)
    async with services.db.session(token) as session:
        taken = await session.scalar(
            select(func.count()).where(User.email == form.email)
        )
    if taken:
        raise _EMAIL_TAKEN
    user = User(
        email=form.email,
        password_hash=password_hash,
        phone=form.phone,
        can_manage_jobs=can_manage_jobs,
        created_at=utc_now(),
    )
    async with services.db.writing() as session:
        session.add(user)
        try:
            await session.commit()
        except IntegrityError:
            # Signed up twice at once: the other request won.
            raise _EMAIL_TAKEN from None
    _log.info(
        "user %d signed up (%s)",
        user.id,
        mask_email(user.email),
        extra={"event": "user.signed_up", "user_id": user.id},
    )
    return user


@router.post("/auth/signin")
async def sign_in(
    form: SignIn,
    response: Response,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Check the password and start a session."""
    try:
        email = normal_email(form.email)
    except ValueError:
        email = form.email
    async with services.db.session(token) as session:
        user = await session.scalar(select(User).where(User.email == email))
    stored = user.password_hash if user else _DUMMY_HASH
    # The hash is checked even for an unknown address, so that the
    # answer takes as long either way.
    matches = await password_matches(stored, form.password)
    if user is None or not matches:
        raise ApiError(
            401,
            "wrong email address or password",
            {"password": "wrong email address or password"},
        )
    session_token = issue_token(services, user)
    set_session_cookie(response, services, session_token)
    return {"user": user_view(user), "token": session_token}


@router.post("/auth/signout", status_code=204)
async def sign_out(response: Response) -> None:
    """End the browser's session (delete its cookie)."""
    response.delete_cookie(COOKIE, path="/")


@router.get("/me")
async def me(user: CurrentUser) -> dict[str, Any]:
    """The signed-in user (401 when nobody is signed in)."""
    return user_view(user)


@router.get("/auth/session")
async def session(user: OptionalUser) -> dict[str, Any]:
    """Who is signed in, if anyone: what every page asks first."""
    return {"user": None if user is None else user_view(user)}


class Permissions(Form):
    """What a user may do beyond the catalogue."""

    can_manage_jobs: bool


@router.put("/users/{user_id}/permissions")
async def set_permissions(
    user_id: int,
    form: Permissions,
    user: CurrentUser,
    services: ServicesDep,
    token: RequestCancellation,
) -> dict[str, Any]:
    """Grant or withdraw the job-management permission.

    Only a user who manages jobs may hand the permission on.
    """
    if not user.can_manage_jobs:
        raise ApiError(403, "only job managers may change permissions")
    token.raise_if_cancellation_requested()
    async with services.db.writing() as session:
        target = await session.get(User, user_id)
        if target is None:
            raise ApiError(404, "no such user")
        target.can_manage_jobs = form.can_manage_jobs
        await session.commit()
    _log.info(
        "user %d %s job management to user %d",
        user.id,
        "granted" if form.can_manage_jobs else "withdrew",
        user_id,
        extra={"event": "user.permissions_changed", "user_id": user_id},
    )
    return {"id": user_id, "can_manage_jobs": form.can_manage_jobs}


_DUMMY_HASH = _hasher.hash("no such user: compare against something")
