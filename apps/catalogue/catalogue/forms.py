"""What every JSON body the API reads has in common.

JSON can spell a lone surrogate (``"\\ud800"``), and Python decodes it
into a ``str`` that has no UTF-8 form: SQLite's driver, the password
hasher and every later step fail on it, and the request ended as a 500.
Every form refuses such text as a 422 on its field instead.
"""

from __future__ import annotations

from pydantic import BaseModel, field_validator

__all__ = ["Form"]


class Form(BaseModel):
    """A request body whose text fields are all valid Unicode."""

    @field_validator("*", mode="before")
    @classmethod
    def _unicode_text(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the text is not valid Unicode") from None
        return value
