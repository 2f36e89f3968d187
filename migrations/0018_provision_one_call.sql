-- Provisioning a gift card is one database call, as a credit movement is (0017): with pg8000's public API each
-- statement is a round trip, and BEGIN and COMMIT would be two more. The caller reads the campaign's context and
-- its own memberships first (one read) and is authorized in Python; this claims a card, writes the redemption and
-- its reveal and charges for it, in a transaction of its own, which the server commits when the statement ends.
--
-- The claim of a card moves here too, so that provisioning and every other caller claim by the same statements:
-- - pools_with_stock: the pools of a brand and denomination that hold a card, cheapest first. Whether a pool has
--   stock is its first card in available_cards' primary key (ORDER BY + LIMIT, which only that index answers
--   cheaply); an EXISTS, once the table was analysed and held few pools, was planned as a hash of every available
--   card (16 ms a claim at 60,000 cards).
-- - claim_card: the cheapest pool first, each pool scanned from p_start (a random point: concurrent claims start
--   apart, and the dead entries earlier claims left are spread thin) and then from its start. The claim from one
--   pool takes the first available card at or after the start in available_cards' primary key (pool_id, card_id),
--   locked with SKIP LOCKED (rows other claims hold are passed over), removes it and marks the card claimed.
--   PL/pgSQL keeps the statements' plans for the session (tests/integration/test_claim_plan.py holds them to an
--   index path, custom and generic).

CREATE FUNCTION pools_with_stock(p_brand uuid, p_denomination bigint) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT p.id FROM card_pools p
     CROSS JOIN LATERAL (SELECT 1 FROM available_cards a WHERE a.pool_id = p.id ORDER BY a.card_id LIMIT 1) stock
     WHERE p.brand_id = p_brand AND p.denomination_cents = p_denomination
     ORDER BY p.cost_per_card_cents, p.created_at, p.id
$$;

CREATE FUNCTION claim_card(p_brand uuid, p_denomination bigint, p_start uuid)
RETURNS TABLE (card_id uuid, pool_id uuid, cost_cents bigint)
LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_pool uuid;
    v_start uuid;
BEGIN
    FOR v_pool IN SELECT * FROM pools_with_stock(p_brand, p_denomination) LOOP
        FOREACH v_start IN ARRAY ARRAY[p_start, '00000000-0000-0000-0000-000000000000'::uuid] LOOP
            -- the claim from one pool
            RETURN QUERY
            WITH taken AS (
                DELETE FROM available_cards
                 WHERE pool_id = v_pool
                   AND card_id = (SELECT card_id FROM available_cards
                                   WHERE pool_id = v_pool AND card_id >= v_start
                                   ORDER BY card_id LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING card_id
            )
            UPDATE cards SET status = 'claimed', claimed_at = now()
              FROM taken WHERE cards.id = taken.card_id AND cards.status = 'available'
            RETURNING cards.id, cards.pool_id, cards.cost_cents::bigint;
            IF FOUND THEN
                RETURN;
            END IF;
        END LOOP;
    END LOOP;
END
$$;

-- The price rule of 0016, unchanged, in PL/pgSQL: a SQL function whose body holds a sub-select is not inlined, and
-- PostgreSQL 16 plans its body afresh at every call (a tenth of a millisecond, at every provision and for every
-- denomination a dashboard prices); PL/pgSQL keeps the plan for the session.
CREATE OR REPLACE FUNCTION card_price_cents(p_brand uuid, p_denomination bigint) RETURNS bigint
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
    RETURN coalesce(
        (SELECT client_price_cents FROM brand_prices WHERE brand_id = p_brand AND denomination_cents = p_denomination),
        p_denomination);
END
$$;

-- One gift card for a redemption code, in the statement's own transaction:
-- 1. the campaign, read afresh: it must still be active; who pays (its own account when isolated, else its
--    client's) and the price (card_price_cents, 0016);
-- 2. a failed redemption of the same code (p_retry_of) gives the code up to this one; an issued code
--    (p_issued_code) is marked redeemed, unless it was voided;
-- 3. a card claimed (claim_card) and the redemption written `fulfilled` with it and its reveal recorded; with no
--    card in stock, the redemption written `pending` with its vendor key and lease, for the vendors to fill;
-- 4. the charge, last (ledger_transfer): the paying account's row, locked by it until commit, is what every
--    provision on this budget queues for;
-- 5. the checks deferred to commit run now, in this function (SET CONSTRAINTS ALL IMMEDIATE): the references to
--    the charge and the payer (0009, 0013), the ledger's balance, and the depletion pause (0016), so that the
--    answer says whether this charge paused the campaign.
-- Answers the redemption's state, the paying account's balance after the charge, and the card's row with what
-- decrypting it needs (the columns of giftcards.card_secrets.CARD_SELECT; NULL for a pending redemption).
-- Refusals: campaign_not_active, invalid_code, insufficient_credit (ledger_transfer), and a unique violation of
-- redemptions_code_hash_key when another request took the code first.
CREATE FUNCTION provision_card(
    p_redemption uuid, p_charge uuid, p_code_hash bytea, p_code_last4 text, p_campaign uuid, p_brand uuid,
    p_denomination bigint, p_spend_account text, p_issued_code uuid, p_retry_of uuid,
    p_recipient_id text, p_delivery_method text, p_delivery_address text, p_source_ip inet, p_user_agent text,
    p_channel text, p_subject text, p_initiator text, p_scan_start uuid, p_vendor_key text, p_lease_token uuid,
    p_lease_s double precision
) RETURNS TABLE (
    redemption_status text, amount_charged_cents bigint, credit_remaining_cents bigint, campaign_paused boolean,
    created_at timestamptz, fulfilled_at timestamptz,
    id text, brand_id text, denomination_cents bigint, source text, vendor text, vendor_reference text,
    code_sealed bytea, number_sealed bytea, pin_sealed bytea, code_last4 text, number_last4 text, expires_on date,
    status text, wrapped_key bytea
) LANGUAGE plpgsql SET enable_seqscan = off AS $$
#variable_conflict use_column
DECLARE
    v_client uuid;
    v_status text;
    v_payer uuid;
    v_price bigint;
    v_agency_price bigint;
    v_spend uuid;
    v_card record;
    v_balance bigint;
BEGIN
    SELECT c.client_id, c.status, CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END,
           card_price_cents(p_brand, p_denomination),
           (SELECT bp.agency_price_cents FROM brand_prices bp
             WHERE bp.brand_id = p_brand AND bp.denomination_cents = p_denomination),
           (SELECT a.id FROM credit_accounts a WHERE a.system_name = p_spend_account)
      INTO v_client, v_status, v_payer, v_price, v_agency_price, v_spend
      FROM campaigns c JOIN clients cl ON cl.id = c.client_id
     WHERE c.id = p_campaign;
    IF v_status IS DISTINCT FROM 'active' THEN
        RAISE EXCEPTION 'giftcards:campaign_not_active: The campaign is not active.';
    END IF;

    IF p_retry_of IS NOT NULL THEN
        UPDATE redemptions SET redemption_code_hash = NULL, retried_by = p_redemption, updated_at = now()
         WHERE redemptions.id = p_retry_of AND redemption_code_hash = p_code_hash
           AND redemptions.status = 'failed';
        IF NOT FOUND THEN
            RAISE EXCEPTION USING ERRCODE = 'unique_violation', CONSTRAINT = 'redemptions_code_hash_key',
                MESSAGE = 'a concurrent retry of this redemption code took it over first';
        END IF;
    END IF;
    IF p_issued_code IS NOT NULL THEN
        UPDATE redemption_codes SET status = 'redeemed', redeemed_at = coalesce(redeemed_at, now())
         WHERE redemption_codes.id = p_issued_code AND redemption_codes.status <> 'void';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'giftcards:invalid_code: This code is not valid. Check it and try again.';
        END IF;
    END IF;

    SELECT * INTO v_card FROM claim_card(p_brand, p_denomination, p_scan_start);
    IF v_card.card_id IS NOT NULL THEN
        INSERT INTO redemptions (id, redemption_code_hash, code_last4, campaign_id, client_id, brand_id,
            denomination_cents, status, source, card_id, paying_account_id, charge_transfer_id, amount_charged_cents,
            cost_basis_cents, agency_price_cents, recipient_id, delivery_method, delivery_address, source_ip,
            user_agent, fulfilled_at)
        VALUES (p_redemption, p_code_hash, p_code_last4, p_campaign, v_client, p_brand, p_denomination, 'fulfilled',
            'csv', v_card.card_id, v_payer, p_charge, v_price, v_card.cost_cents, v_agency_price, p_recipient_id,
            p_delivery_method, p_delivery_address, p_source_ip, p_user_agent, now());
        INSERT INTO card_reveals (redemption_id, card_id, channel, subject, source_ip, user_agent)
        VALUES (p_redemption, v_card.card_id, p_channel, p_subject, p_source_ip, p_user_agent);
    ELSE
        INSERT INTO redemptions (id, redemption_code_hash, code_last4, campaign_id, client_id, brand_id,
            denomination_cents, status, paying_account_id, charge_transfer_id, amount_charged_cents,
            agency_price_cents, vendor_key, next_attempt_at, lease_token, recipient_id, delivery_method,
            delivery_address, source_ip, user_agent)
        VALUES (p_redemption, p_code_hash, p_code_last4, p_campaign, v_client, p_brand, p_denomination, 'pending',
            v_payer, p_charge, v_price, v_agency_price, p_vendor_key, now() + make_interval(secs => p_lease_s),
            p_lease_token, p_recipient_id, p_delivery_method, p_delivery_address, p_source_ip, p_user_agent);
    END IF;

    SELECT t.debit_balance_after INTO v_balance
      FROM ledger_transfer(p_charge, 'redemption', v_payer, v_spend, v_price, p_initiator,
                           'redemption ' || p_redemption, NULL) AS t;
    SET CONSTRAINTS ALL IMMEDIATE;

    RETURN QUERY
    SELECT r.status::text, r.amount_charged_cents::bigint, v_balance, r.campaign_paused, r.created_at,
           r.fulfilled_at, c.id::text, c.brand_id::text, c.denomination_cents::bigint, c.source::text,
           c.vendor::text, c.vendor_reference::text, c.code_sealed, c.number_sealed, c.pin_sealed,
           c.code_last4::text, c.number_last4::text, c.expires_on, c.status::text, k.wrapped_key
      FROM redemptions r
      LEFT JOIN cards c ON c.id = r.card_id
      LEFT JOIN card_data_keys k ON k.id = c.key_id
     WHERE r.id = p_redemption;
END
$$;
