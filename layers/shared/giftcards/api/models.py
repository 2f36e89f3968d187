"""What the routers' response models are made of: money, times and pages as callers see them.

A route's return annotation is its response model, so the OpenAPI document describes what the route really answers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import CoreSchema, core_schema

from giftcards import pagination

T = TypeVar('T')
V = TypeVar('V')


class Answer(BaseModel):
    """What every response model is: built on first use rather than at import, so that a cold start pays only for
    the answers of the routes it serves."""

    model_config = ConfigDict(defer_build=True)


class Body(BaseModel):
    """What every request body model is: a field it does not declare is refused, and like the answers it is built on
    first use rather than at import."""

    model_config = ConfigDict(extra='forbid', defer_build=True)


Dollars = int | float
"""Money in an answer: decimal dollars, a whole number where there are no cents (`money.to_dollars`)."""


class _Isoformat:
    """A `datetime` written as `datetime.isoformat` writes it, in Python and in JSON. (pydantic's `PlainSerializer`
    would say the same, but its module is one every cold start would then import for this alone.)"""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.datetime_schema(
            serialization=core_schema.plain_serializer_function_ser_schema(
                datetime.isoformat, return_schema=core_schema.str_schema()
            )
        )


IsoTimestamp = Annotated[datetime, _Isoformat(), WithJsonSchema({'type': 'string', 'format': 'date-time'})]
"""A time as Python's `isoformat` writes it (`...+00:00`), the form these fields have always had on the wire. (A plain
`datetime` field is written the way pydantic writes it, `...Z`.)"""


Absent = SkipJsonSchema[None]
"""The type of a field only some answers have, with `Field(None, exclude_if=absent)`: `pin: str | Absent`. Without a
value it is left out of the answer, and the document describes it as optional rather than as nullable."""


def absent(value: object) -> bool:
    return value is None


class Page(Answer, Generic[T]):
    """One page of a list: `?limit=` items and the cursor of the next page (null on the last)."""

    items: list[T]
    next_cursor: str | None

    @classmethod
    def of(cls, page: pagination.Page[V], render: Callable[[V], T]) -> Self:
        """A page of the domain's values, each rendered by `render`."""
        return cls(items=[render(item) for item in page.items], next_cursor=page.next_cursor)
