-- One place for each pricing rule, used by provisioning, the monitor and the dashboards alike.
--
-- Before, the price of a card was written out in the provisioning statement, in campaign_min_price_cents, twice in
-- the monitor and in Python; and "can this campaign still pay for its cheapest card" three times, disagreeing: the
-- monitor looked only at the denominations a campaign had redeemed, so a campaign that redeemed one $20 card of a
-- brand that also sells $10 cards, with $15 left, was paused by the monitor and not by provisioning.
--
-- - card_price_cents: what a card of a brand and denomination is charged, the brand's client price or else its
--   face value.
-- - campaign_min_price_cents (same signature as 0009): the cheapest card the campaign deals in, priced by
--   card_price_cents.
-- - pause_if_depleted: pauses an active campaign whose paying account holds less than that, with its audit
--   event; provisioning's commit-time trigger and the monitor both call it.

CREATE FUNCTION card_price_cents(p_brand uuid, p_denomination bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        (SELECT client_price_cents FROM brand_prices WHERE brand_id = p_brand AND denomination_cents = p_denomination),
        p_denomination)
$$;

-- The charged price of the cheapest card a campaign deals in: every denomination of the brands it redeemed, of the
-- brands of its issued codes not yet redeemed, and of `p_brand` (a card being priced for it); the whole catalogue
-- for a campaign without any. NULL: the catalogue is empty.
CREATE OR REPLACE FUNCTION campaign_min_price_cents(p_campaign uuid, p_brand uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    WITH used AS (
        SELECT brand_id FROM redemptions WHERE campaign_id = p_campaign
        UNION
        SELECT brand_id FROM redemption_codes WHERE campaign_id = p_campaign AND status = 'issued'
        UNION
        SELECT p_brand WHERE p_brand IS NOT NULL
    )
    SELECT min(card_price_cents(b.id, d.cents))
      FROM brands b CROSS JOIN LATERAL unnest(b.denominations_cents) AS d (cents)
     WHERE b.id IN (SELECT brand_id FROM used) OR NOT EXISTS (SELECT 1 FROM used)
$$;

-- Pause the campaign (reason 'depleted') if it is active and its paying account can no longer pay for its cheapest
-- card; answers whether it paused it now. `p_redemption`: the redemption whose charge emptied it, which is marked.
-- The paying account's row is share-locked, so the balance cannot change between the decision and the pause.
CREATE FUNCTION pause_if_depleted(p_campaign uuid, p_actor text, p_redemption uuid) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
    v_balance bigint;
    v_cheapest bigint;
BEGIN
    SELECT c.status, acc.balance_cents INTO v_status, v_balance
      FROM campaigns c
      JOIN clients cl ON cl.id = c.client_id
      JOIN credit_accounts acc ON acc.id = CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END
     WHERE c.id = p_campaign
       FOR SHARE OF acc;
    IF v_status IS DISTINCT FROM 'active' THEN
        RETURN false;
    END IF;
    v_cheapest := campaign_min_price_cents(p_campaign, NULL);
    IF v_cheapest IS NULL OR v_balance >= v_cheapest THEN
        RETURN false;
    END IF;
    UPDATE campaigns SET status = 'paused', paused_reason = 'depleted', updated_at = now()
     WHERE id = p_campaign AND status = 'active';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_redemption IS NOT NULL THEN
        UPDATE redemptions SET campaign_paused = true WHERE id = p_redemption;
    END IF;
    INSERT INTO audit_events (actor, action, entity_type, entity_id, details)
    VALUES (p_actor, 'campaign.paused', 'campaign', p_campaign,
            jsonb_strip_nulls(jsonb_build_object('reason', 'depleted', 'balance_cents', v_balance,
                                                 'cheapest_cents', v_cheapest, 'redemption_id', p_redemption)));
    RETURN true;
END
$$;

-- At commit, after the charge (0009): enough for the card just bought is enough for the campaign's cheapest;
-- otherwise the one rule decides.
CREATE OR REPLACE FUNCTION redemptions_pause_if_depleted() RETURNS trigger LANGUAGE plpgsql
SET enable_seqscan = off AS $$
BEGIN
    IF (SELECT balance_cents FROM credit_accounts WHERE id = NEW.paying_account_id) >= NEW.amount_charged_cents THEN
        RETURN NULL;
    END IF;
    PERFORM pause_if_depleted(NEW.campaign_id, 'provisioning', NEW.id);
    RETURN NULL;
END
$$;

-- Field limits are declared once, in giftcards.limits: the request models take them from there (and so does the
-- OpenAPI document), and each is enforced here by the domain it names (tests/integration/test_limits.py holds the
-- two together). Names and idempotency keys still had column CHECKs of their own. The new types cost no table
-- rewrite; brands_name_unique, an expression index on the name, is rebuilt (a small table).
CREATE DOMAIN entity_name AS text CONSTRAINT entity_name CHECK (length(btrim(VALUE)) BETWEEN 1 AND 200);
CREATE DOMAIN idempotency_key_text AS text CONSTRAINT idempotency_key_text CHECK (length(VALUE) BETWEEN 1 AND 255);

ALTER TABLE agencies ALTER COLUMN name TYPE entity_name, DROP CONSTRAINT agencies_name_check;
ALTER TABLE clients ALTER COLUMN name TYPE entity_name, DROP CONSTRAINT clients_name_check;
ALTER TABLE campaigns ALTER COLUMN name TYPE entity_name, DROP CONSTRAINT campaigns_name_check;
ALTER TABLE brands ALTER COLUMN name TYPE entity_name, DROP CONSTRAINT brands_name_check;
ALTER TABLE idempotency_keys ALTER COLUMN key TYPE idempotency_key_text, DROP CONSTRAINT idempotency_keys_key_check;
