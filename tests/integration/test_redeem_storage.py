"""No redemption code is stored in clear: after codes are issued, redeemed, replayed, guessed, voided and
provisioned through the authenticated route, every text, bytea and JSON column of every table is searched for
every code, with and without its dashes, as the owner role (which sees everything)."""

from __future__ import annotations

from typing import Any

import pytest
from giftcards import code_administration, codes, errors, provisioning, ratelimit, redeeming
from redeem_app import lambda_handler

from tests import redeem_support as rs
from tests.events import call, http_event

SEARCHABLE = ('text', 'character varying', 'character', 'bytea', 'json', 'jsonb', 'ARRAY', 'USER-DEFINED')


def columns(owner: Any) -> list[tuple[str, str, str, str]]:
    return [
        tuple(row)
        for row in owner.run(
            'SELECT c.table_schema, c.table_name, c.column_name, c.data_type FROM information_schema.columns c'
            ' JOIN information_schema.tables t USING (table_schema, table_name)'
            " WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND t.table_type = 'BASE TABLE'"
            ' AND c.data_type = ANY(CAST(:wanted AS text[]))',
            wanted=list(SEARCHABLE),
        )
    ]


def holding(owner: Any, needles: list[str]) -> list[str]:
    """The columns in which any of `needles` (upper case) occurs, in any letter case."""
    found = []
    for schema, table, column, data_type in columns(owner):
        value = f'encode("{column}", \'escape\')' if data_type == 'bytea' else f'CAST("{column}" AS text)'
        [[hits]] = owner.run(
            f'SELECT count(*) FROM "{schema}"."{table}"'
            f' WHERE EXISTS (SELECT 1 FROM unnest(CAST(:needles AS text[])) AS n WHERE strpos(upper({value}), n) > 0)',
            needles=needles,
        )
        if hits:
            found.append(f'{schema}.{table}.{column}')
    return found


def test_no_code_is_stored_in_clear_anywhere(owner):
    camp = rs.campaign(owner, cards_in_stock=4)
    issued = camp.issue(8)
    redeemed_json, redeemed_form, replayed, voided, provisioned, failed_guess = issued[:6]
    ip = rs.unique_ip()

    def post(body: Any, **kwargs: Any) -> int:
        return call(lambda_handler, http_event('POST', '/redeem', body=body, source_ip=ip, **kwargs))[0]

    assert post({'code': redeemed_json}) == 200
    form = http_event(
        'POST',
        '/redeem',
        raw_body=f'code={redeemed_form.lower()}',
        content_type='application/x-www-form-urlencoded',
        source_ip=ip,
    )
    assert call(lambda_handler, form)[0] == 200
    assert post({'code': replayed}) == 200
    assert post({'code': replayed.replace('-', ' ')}) == 200
    code_administration.void_code(camp.tree.client_admin, rs.code_row(voided)['id'])
    assert post({'code': voided}) == 404
    assert post({'code': failed_guess[:-1] + ('0' if failed_guess[-1] != '0' else '1')}) == 404
    request = provisioning.ProvisionRequest(
        campaign_id=camp.id,
        brand_id=camp.brand['id'],
        denomination_cents=2500,
        redemption_code=provisioned.lower(),
        source_ip=ip,
        user_agent='integration',
    )
    provisioning.provision_gift_card(request, subject=camp.tree.integration)
    assert rs.code_row(provisioned)['status'] == 'redeemed'
    camp.pause()
    assert post({'code': issued[6]}) == 409
    with pytest.raises(errors.CampaignNotActive):
        redeeming.redeem(issued[7], ratelimit.Source.of(ip, 'direct'))

    needles = issued + [code.replace('-', '') for code in issued]
    assert len(columns(owner)) > 20, 'the scan reaches the schema'
    assert holding(owner, needles) == []


def test_the_scan_finds_a_code_that_is_stored(owner):
    """The search itself works: a code written into a text, a bytea and a jsonb column is found in each."""
    code = codes.generate_code()
    owner.run(
        'INSERT INTO audit_events (actor, action, entity_type, details)'
        " VALUES (:code, 'test.plaintext', 'test', CAST(:details AS jsonb))",
        code=code.lower(),
        details=f'{{"note": "{code.replace("-", "")}"}}',
    )
    owner.run('INSERT INTO card_data_keys (id, wrapped_key) VALUES (gen_random_uuid(), :k)', k=f'xx{code}yy'.encode())
    try:
        assert set(holding(owner, [code, code.replace('-', '')])) == {
            'public.audit_events.actor',
            'public.audit_events.details',
            'public.card_data_keys.wrapped_key',
        }
    finally:
        owner.run("DELETE FROM audit_events WHERE action = 'test.plaintext'")
        owner.run('DELETE FROM card_data_keys WHERE wrapped_key = :k', k=f'xx{code}yy'.encode())
