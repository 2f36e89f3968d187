"""What a card costs a campaign, and pausing a campaign that can no longer pay for its cheapest card.

The price charged for a brand and denomination is the face value unless the brand's price list sets a
`client_price`; an `agency_price` in the list is recorded with each redemption (profit reporting).
A campaign's cards are every denomination of the brands it deals in (redeemed, or issued codes not yet
redeemed); a campaign without any is measured against the cheapest card of the whole catalogue.

Provisioning pauses a campaign at the commit of the charge that emptied it (the trigger of migration 0009, which
needs the balance after the charge); `pause_if_depleted` is the same check for the monitor.
"""

from __future__ import annotations

import json

from giftcards.db import UnitOfWork

_PAYER = """
SELECT c.status, a.balance_cents
  FROM campaigns c JOIN clients cl ON cl.id = c.client_id
  JOIN credit_accounts a ON a.id = CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END
 WHERE c.id = CAST(:campaign AS uuid)
   FOR SHARE OF a
"""

_PAUSE = """
UPDATE campaigns SET status = 'paused', paused_reason = 'depleted', updated_at = now()
 WHERE id = CAST(:campaign AS uuid) AND status = 'active'
"""


def charged_price_cents(denomination_cents: int, client_price_cents: int | None) -> int:
    return client_price_cents if client_price_cents is not None else denomination_cents


def campaign_min_price_cents(uow: UnitOfWork, campaign_id: str, *, brand_id: str | None = None) -> int | None:
    """The price of the cheapest card the campaign deals in (None: the catalogue is empty). The database function
    (migration 0009) is also what pauses a campaign at the commit of the charge that emptied it."""
    value = uow.value(
        'SELECT campaign_min_price_cents(CAST(:campaign AS uuid), CAST(:brand AS uuid))',
        campaign=campaign_id,
        brand=brand_id,
    )
    return int(value) if value is not None else None


def pause_if_depleted(uow: UnitOfWork, campaign_id: str) -> bool:
    """The monitor's check: pause the campaign (reason 'depleted') if its paying account can no longer pay for its
    cheapest card. In the caller's transaction; answers whether it paused the campaign now."""
    row = uow.fetch_one(_PAYER, campaign=campaign_id)
    if row is None or row['status'] != 'active':
        return False
    balance = int(row['balance_cents'])
    cheapest = campaign_min_price_cents(uow, campaign_id)
    if cheapest is None or balance >= cheapest or not uow.execute(_PAUSE, campaign=campaign_id):
        return False
    uow.execute(
        'INSERT INTO audit_events (actor, action, entity_type, entity_id, details)'
        " VALUES ('monitor', 'campaign.paused', 'campaign', CAST(:id AS uuid), CAST(:details AS jsonb))",
        id=campaign_id,
        details=json.dumps({'reason': 'depleted', 'balance_cents': balance, 'cheapest_cents': cheapest}),
    )
    return True
