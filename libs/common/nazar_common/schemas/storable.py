"""Values that PostgreSQL can store: text and integers.

PostgreSQL refuses two kinds of Python strings: those with a NUL character
(``\\u0000``: ``text`` cannot hold it and ``jsonb`` refuses the ``\\u0000``
escape) and those with a lone surrogate (``\\ud800``...), which have no UTF-8
encoding. Such a string must be refused where it enters — a ``400`` naming
the field — rather than by the database, where it would fail a whole group
commit or transaction.

Every string a client sends that is stored, or sent to the database as a
parameter, is a :data:`Text` (in a pydantic model) or checked with
:func:`text_problem` (in a hand-written parser). Strings constrained by an
ASCII ``pattern`` (names, hosts) are safe already. Integers sent to the
database are :data:`BigInt` (or bounded more tightly).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field, GetJsonSchemaHandler, SecretStr
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

#: JSON Schema ``pattern`` of storable text, as published in the OpenAPI document.
TEXT_PATTERN = "^[^\\u0000]*$"

NUL_MESSAGE = "contains a NUL character (\\u0000), which cannot be stored"
SURROGATE_MESSAGE = "contains a lone surrogate (not valid Unicode), which cannot be stored"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored, or None if it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def check_text(value: str) -> str:
    """Pydantic validator: ``value`` if it can be stored, else ValueError."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


class _StorablePattern:
    """Adds :data:`TEXT_PATTERN` to a string's JSON Schema (unless it has a pattern)."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema: dict[str, Any] = handler(schema)
        if json_schema.get("type") == "string":
            json_schema.setdefault("pattern", TEXT_PATTERN)
        return json_schema

    def __hash__(self) -> int:
        return hash(type(self))

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)


#: A string PostgreSQL can store: use it for every free-text field of a model
#: that is stored (descriptions, comments, label values, dict keys...).
Text = Annotated[str, AfterValidator(check_text), _StorablePattern()]

def check_secret(value: SecretStr) -> SecretStr:
    """Pydantic validator: :func:`check_text` of a secret's value."""
    check_text(value.get_secret_value())
    return value


#: A secret (a password, a webhook URL) that PostgreSQL can store.
SecretText = Annotated[SecretStr, AfterValidator(check_secret)]

#: The range of PostgreSQL's ``bigint``: an integer parameter outside it is an
#: error of the client's (``400``), not of the database driver's.
MIN_BIGINT = -(2**63)
MAX_BIGINT = 2**63 - 1
BigInt = Annotated[int, Field(ge=MIN_BIGINT, le=MAX_BIGINT)]
