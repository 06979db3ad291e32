"""Clear 4xx answers: one shape for every refusal the API makes.

Every error body is ``{"detail": "...", "fields": {"name": "..."}}``;
``fields`` names the inputs at fault, so a form can put each message
next to its field. FastAPI's own validation errors (422) are reshaped
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

__all__ = ["ApiError", "install_error_handlers"]


class ApiError(Exception):
    """A request the API refuses, with a status and field messages.

    Args:
        status: the HTTP status (4xx).
        detail: one sentence for the whole request.
        fields: messages per input field.
        headers: extra response headers (``Retry-After``...).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def not_found(what: str) -> ApiError:
    """A 404 for a missing ``what`` ("product", "category"...)."""
    return ApiError(404, f"no such {what}")


def _field_name(location: Sequence[Any]) -> str:
    # ("body", "price") -> "price"; ("query", "page") -> "page".
    parts = [str(part) for part in location[1:]] or [str(location[0])]
    return ".".join(parts)


def _malformed_json(error: Mapping[str, Any]) -> str:
    location = error.get("loc", ())
    offset = location[-1] if len(location) > 1 else None
    reason = (error.get("ctx") or {}).get("error")
    text = "malformed JSON"
    if isinstance(offset, int):
        text += f" at character {offset}"
    return f"{text} ({reason})" if reason else text


def _field_message(error: Mapping[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    # Pydantic prefixes custom messages with "Value error, ".
    return message.removeprefix("Value error, ")


async def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return JSONResponse(
        {"detail": error.detail, "fields": error.fields},
        status_code=error.status,
        headers=error.headers,
    )


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    fields: dict[str, str] = {}
    for item in error.errors():
        if item.get("type") == "json_invalid":
            # Its location is ("body", offset): name the body instead.
            fields.setdefault("body", _malformed_json(item))
            continue
        name = _field_name(item.get("loc", ("body",)))
        fields.setdefault(name, _field_message(item))
    detail = "; ".join(f"{name}: {text}" for name, text in fields.items())
    return JSONResponse(
        {"detail": f"invalid input ({detail})", "fields": fields},
        status_code=422,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Answer :class:`ApiError` and validation errors in the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid)
