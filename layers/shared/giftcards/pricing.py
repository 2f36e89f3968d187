"""What a card costs a campaign, and pausing a campaign that can no longer pay for its cheapest card.

The price charged for a brand and denomination is the face value unless the brand's price list sets a
`client_price`; an `agency_price` in the list is recorded with each redemption (profit reporting).
A campaign's cards are every denomination of the brands it deals in (redeemed, or issued codes not yet
redeemed); a campaign without any is measured against the cheapest card of the whole catalogue.
"""

from __future__ import annotations

from giftcards.db import UnitOfWork

# The cheapest charged price among the cards of the brands a campaign deals in: brands it redeemed, brands of its
# unredeemed issued codes, and `:brand` (a redemption being written in the same transaction); the whole
# catalogue for a campaign without any.
_CAMPAIGN_MIN_PRICE = """
WITH used AS (
    SELECT brand_id FROM redemptions WHERE campaign_id = CAST(:campaign AS uuid)
    UNION
    SELECT brand_id FROM redemption_codes WHERE campaign_id = CAST(:campaign AS uuid) AND status = 'issued'
    UNION
    SELECT CAST(:brand AS uuid) WHERE CAST(:brand AS uuid) IS NOT NULL
), offers AS (
    SELECT b.id AS brand_id, d.cents AS denomination_cents
      FROM brands b CROSS JOIN LATERAL unnest(b.denominations_cents) AS d (cents)
     WHERE b.id IN (SELECT brand_id FROM used) OR NOT EXISTS (SELECT 1 FROM used)
)
SELECT min(coalesce(p.client_price_cents, o.denomination_cents))
  FROM offers o
  LEFT JOIN brand_prices p ON p.brand_id = o.brand_id AND p.denomination_cents = o.denomination_cents
"""

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
    """The price of the cheapest card the campaign deals in (None: the catalogue is empty)."""
    value = uow.value(_CAMPAIGN_MIN_PRICE, campaign=campaign_id, brand=brand_id)
    return int(value) if value is not None else None


def pause_depleted(
    uow: UnitOfWork,
    campaign_id: str,
    balance_cents: int,
    *,
    brand_id: str | None = None,
    actor: str = 'system',
) -> bool:
    """Pause an active campaign whose paying account holds `balance_cents`, too little for its cheapest card.
    Answers whether this call paused it."""
    cheapest = campaign_min_price_cents(uow, campaign_id, brand_id=brand_id)
    if cheapest is None or balance_cents >= cheapest:
        return False
    if not uow.execute(_PAUSE, campaign=campaign_id):
        return False
    uow.execute(
        "INSERT INTO audit_events (actor, action, entity_type, entity_id, details) VALUES (:actor, 'campaign.paused',"
        " 'campaign', CAST(:id AS uuid), CAST(:details AS jsonb))",
        actor=actor,
        id=campaign_id,
        details=f'{{"reason": "depleted", "balance_cents": {int(balance_cents)}, "cheapest_cents": {int(cheapest)}}}',
    )
    return True


def pause_if_depleted(uow: UnitOfWork, campaign_id: str) -> bool:
    """The monitor's check: pause the campaign (reason 'depleted') if its paying account can no longer pay for its
    cheapest card. In the caller's transaction; answers whether it paused the campaign now."""
    row = uow.fetch_one(_PAYER, campaign=campaign_id)
    if row is None or row['status'] != 'active':
        return False
    return pause_depleted(uow, campaign_id, int(row['balance_cents']), actor='monitor')
