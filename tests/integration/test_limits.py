"""Each text limit is declared once (`giftcards.limits`): the database's domain accepts exactly what the
declaration allows, and the OpenAPI document states the same numbers for the fields that use it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from giftcards import limits
from giftcards.api.openapi import openapi_document
from pg8000.native import DatabaseError


def stored(owner: Any, domain: str, value: str) -> bool:
    """Whether the domain takes the value."""
    try:
        owner.run(f'SELECT CAST(:v AS {domain})', v=value)
    except DatabaseError as exc:
        assert exc.args[0]['C'] == '23514', exc  # a check violation, nothing else
        return False
    return True


@pytest.mark.parametrize('limit', limits.ALL, ids=[limit.domain for limit in limits.ALL])
def test_the_database_domain_accepts_exactly_what_the_limit_declares(owner: Any, limit: limits.TextLimit) -> None:
    assert stored(owner, limit.domain, 'x' * limit.max_length)
    assert not stored(owner, limit.domain, 'x' * (limit.max_length + 1))
    if limit.min_length:
        assert stored(owner, limit.domain, 'x' * limit.min_length)
        assert not stored(owner, limit.domain, 'x' * (limit.min_length - 1))
    if limit.trimmed:
        assert stored(owner, limit.domain, ' ' + 'x' * limit.max_length + ' ')  # measured without the spaces
        assert not stored(owner, limit.domain, '   ')


@pytest.mark.parametrize(
    ('schema', 'field', 'limit'),
    [
        ('NewAgency', 'name', limits.NAME),
        ('NewCampaign', 'name', limits.NAME),
        ('MoveCreditBody', 'notes', limits.NOTES),
        ('ProvisionBody', 'recipientId', limits.RECIPIENT_ID),
        ('ProvisionBody', 'deliveryMethod', limits.DELIVERY_METHOD),
        ('ProvisionBody', 'deliveryAddress', limits.DELIVERY_ADDRESS),
    ],
)
def test_the_openapi_document_states_the_declared_limits(schema: str, field: str, limit: limits.TextLimit) -> None:
    prop = json.loads(openapi_document())['components']['schemas'][schema]['properties'][field]
    string = next((p for p in prop.get('anyOf', [prop]) if p.get('type') == 'string'), prop)

    assert string['maxLength'] == limit.max_length
    assert string.get('minLength', 0) == limit.min_length
