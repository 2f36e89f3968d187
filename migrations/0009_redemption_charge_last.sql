-- Provisioning writes the redemption first and charges last, with COMMIT sent together with the charge: the
-- paying account's row (every provision on a budget queues for it) is then locked only while the server works.
-- So what needs the charge moves to commit time, still inside the same transaction:
-- - the redemption's reference to its charge is checked at commit, when the transfer exists;
-- - the depletion pause, which must see the balance after the charge, runs at commit.

ALTER TABLE redemptions ALTER CONSTRAINT redemptions_charge_transfer_id_fkey DEFERRABLE INITIALLY DEFERRED;

-- The charged price of the cheapest card a campaign deals in: every denomination of the brands it redeemed, of
-- the brands of its issued codes not yet redeemed, and of `p_brand` (a redemption being written); the whole
-- catalogue for a campaign without any. NULL: the catalogue is empty. (pricing.campaign_min_price_cents)
CREATE FUNCTION campaign_min_price_cents(p_campaign uuid, p_brand uuid) RETURNS bigint LANGUAGE sql STABLE AS $$
    WITH used AS (
        SELECT brand_id FROM redemptions WHERE campaign_id = p_campaign
        UNION
        SELECT brand_id FROM redemption_codes WHERE campaign_id = p_campaign AND status = 'issued'
        UNION
        SELECT p_brand WHERE p_brand IS NOT NULL
    ), offers AS (
        SELECT b.id AS brand_id, d.cents AS denomination_cents
          FROM brands b CROSS JOIN LATERAL unnest(b.denominations_cents) AS d (cents)
         WHERE b.id IN (SELECT brand_id FROM used) OR NOT EXISTS (SELECT 1 FROM used)
    )
    SELECT min(coalesce(p.client_price_cents, o.denomination_cents))
      FROM offers o
      LEFT JOIN brand_prices p ON p.brand_id = o.brand_id AND p.denomination_cents = o.denomination_cents
$$;

-- At commit, after the charge: a campaign whose paying account can no longer buy its cheapest card is paused
-- (reason 'depleted'), and the redemption that emptied it says so.
CREATE FUNCTION redemptions_pause_if_depleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    balance bigint;
    cheapest bigint;
BEGIN
    SELECT balance_cents INTO balance FROM credit_accounts WHERE id = NEW.paying_account_id;
    -- Enough for the card just bought is enough for the campaign's cheapest.
    IF balance >= NEW.amount_charged_cents THEN
        RETURN NULL;
    END IF;
    cheapest := campaign_min_price_cents(NEW.campaign_id, NEW.brand_id);
    IF cheapest IS NULL OR balance >= cheapest THEN
        RETURN NULL;
    END IF;
    UPDATE campaigns SET status = 'paused', paused_reason = 'depleted', updated_at = now()
     WHERE id = NEW.campaign_id AND status = 'active';
    IF FOUND THEN
        UPDATE redemptions SET campaign_paused = true WHERE id = NEW.id;
        INSERT INTO audit_events (actor, action, entity_type, entity_id, details)
        VALUES ('provisioning', 'campaign.paused', 'campaign', NEW.campaign_id,
                jsonb_build_object('reason', 'depleted', 'balance_cents', balance, 'cheapest_cents', cheapest,
                                   'redemption_id', NEW.id));
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER redemptions_pause_if_depleted AFTER INSERT ON redemptions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION redemptions_pause_if_depleted();
