"""Provisioning's warm path through a real `giftcard serve` (migration 0028): every execution environment that
provisioned for an integration keeps what it learnt, and none of it outlives the integration's membership."""

from __future__ import annotations

from typing import Any

from giftcard_local import app_clients
from giftcard_local.tokens import issue_token
from giftcards import db

from tests import factories
from tests import provisioning_support as ps
from tests.http_support import Live

CALLS = 6  # enough for each of the server's environments to have provisioned for the integration


def provision(live: Live, token: str, setup: ps.Setup) -> Any:
    body = {'campaignId': setup.campaign_id, 'brandId': setup.brand['id'], 'denomination': 25}
    return live.call('POST', '/provision-gift-card', token=token, json_body={**body, 'redemptionCode': ps.new_code()})


def test_a_revoked_integration_is_refused_by_every_environment_that_provisioned_for_it(live: Live, owner: Any) -> None:
    with db.owner_connection() as conn:
        s = ps.setup(conn, funds_cents=100_000)
    ps.pool(s.admin, s.brand['id'], 2500, 2350, CALLS + 2)
    app_clients.add(s.tree.integration)
    token = issue_token(s.tree.integration, client=True)
    assert [provision(live, token, s).status for _ in range(CALLS)] == [200] * CALLS
    balance = factories.balance_cents(s.paying_account)

    owner.run('DELETE FROM memberships WHERE subject = :s', s=s.tree.integration)
    refused = [provision(live, token, s) for _ in range(CALLS)]

    assert [(r.status, r.error_code) for r in refused] == [(404, 'not_found')] * CALLS
    assert factories.balance_cents(s.paying_account) == balance
