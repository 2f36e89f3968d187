"""Limits on the text callers send, declared once.

The request models take their constraints from here (so the OpenAPI document states them), and the database
enforces each with the domain it names (migrations 0015, 0016); `tests/integration/test_limits.py` checks that
every domain accepts exactly what its limit declares.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple

from pydantic import StringConstraints


class TextLimit(NamedTuple):
    domain: str  # the database domain that enforces the limit
    max_length: int
    min_length: int = 0
    trimmed: bool = False  # measured after removing leading and trailing white space (and stored so)

    def constraints(self) -> StringConstraints:
        """What a request model's `str` field under this limit declares (`Annotated[str, limit.constraints()]`)."""
        return StringConstraints(
            strip_whitespace=self.trimmed, min_length=self.min_length or None, max_length=self.max_length
        )


NAME = TextLimit('entity_name', 200, 1, trimmed=True)  # agencies, clients, campaigns, brands
NOTES = TextLimit('note_text', 500)  # a credit movement's notes
RECIPIENT_ID = TextLimit('recipient_text', 200)
DELIVERY_METHOD = TextLimit('delivery_method_text', 50)
DELIVERY_ADDRESS = TextLimit('delivery_address_text', 320)
IDEMPOTENCY_KEY = TextLimit('idempotency_key_text', 255, 1)
USER_AGENT = TextLimit('user_agent_text', 512)  # recorded from the request, cut to the limit

ALL = (NAME, NOTES, RECIPIENT_ID, DELIVERY_METHOD, DELIVERY_ADDRESS, IDEMPOTENCY_KEY, USER_AGENT)

# The field types of the request models.
NameText = Annotated[str, NAME.constraints()]
NotesText = Annotated[str, NOTES.constraints()]
RecipientIdText = Annotated[str, RECIPIENT_ID.constraints()]
DeliveryMethodText = Annotated[str, DELIVERY_METHOD.constraints()]
DeliveryAddressText = Annotated[str, DELIVERY_ADDRESS.constraints()]
