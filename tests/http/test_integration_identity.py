"""One identity per integration, through a real `giftcard serve`: each integrating system is its own app client and
subject, so a grant for one client is of no use to another's system, and the provisioning route takes only a token
carrying the provisioning scope (an integration's) or a person's."""

from __future__ import annotations

from typing import Any

import pytest
from giftcard_local import app_clients
from giftcard_local.tokens import issue_token
from giftcards import db

from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Live


def provision(live: Live, token: str, setup: ps.Setup) -> Any:
    body = {'campaignId': setup.campaign_id, 'brandId': setup.brand['id'], 'denomination': 25}
    return live.call('POST', '/provision-gift-card', token=token, json_body={**body, 'redemptionCode': ps.new_code()})


@pytest.fixture(scope='module')
def tenants(live: Live, database_url: str) -> tuple[ps.Setup, ps.Setup]:
    with db.owner_connection() as owner:
        setups = (ps.setup(owner, funds_cents=10_000), ps.setup(owner, funds_cents=10_000))
        for s in setups:
            ps.pool(s.admin, s.brand['id'], 2500, 2350, 3)
            app_clients.add(s.tree.integration)
    return setups


def test_each_integration_provisions_for_its_own_client_only(live: Live, tenants: tuple[ps.Setup, ps.Setup]) -> None:
    a, b = tenants
    a_token, b_token = issue_token(a.tree.integration, client=True), issue_token(b.tree.integration, client=True)
    balance = factories.balance_cents(a.paying_account)

    crossed = provision(live, b_token, a)

    assert crossed.status == 404 and factories.balance_cents(a.paying_account) == balance
    assert provision(live, a_token, a).status == 200
    assert provision(live, b_token, b).status == 200


def test_an_app_client_without_the_provisioning_scope_is_refused_before_the_function_runs(
    live: Live, tenants: tuple[ps.Setup, ps.Setup], owner: Any
) -> None:
    a, _ = tenants
    reporting = factories.integration(owner, a.tree.client['id'])  # a membership, but a client of another purpose
    app_clients.add(reporting, scopes=('giftcards/reports',))
    balance = factories.balance_cents(a.paying_account)

    refused = provision(live, issue_token(reporting, client=True), a)

    assert (refused.status, refused.error_code) == (403, 'insufficient_scope')
    assert factories.balance_cents(a.paying_account) == balance


def test_a_person_provisions_with_the_access_token_of_the_people_client(
    live: Live, tenants: tuple[ps.Setup, ps.Setup]
) -> None:
    a, _ = tenants

    assert provision(live, issue_token(a.tree.client_admin), a).status == 200
