-- Provisioning's warm path: one round trip where there were two.
--
-- A provision read its context (provision_context: the campaign, the brand, the code's redemption, the caller's
-- memberships) and then called provision_card: two round trips, the read a third of the database's time for a
-- provision once row-level security entered the caller's scope in each. A caller that provisions again for the same
-- campaign, brand and denomination already knows what the read would tell it, except what only the call can find
-- out (whether the code was used: the unique index refuses it; whether the campaign is active: the call checks). So
-- the application keeps, per process, what a read authorized (the campaign's client, the brand's name, and the
-- digest of the caller's memberships it decided on) and sends only the call, which checks, in the transaction that
-- charges, that none of it changed: the same memberships (gc_enter now keeps their digest), the same client, the
-- brand still offering the denomination. Anything else, and it refuses before claiming or charging anything; the application
-- reads afresh and decides again. An authorization is thus checked against the memberships of the charging
-- transaction itself, never against a remembered answer.

-- gc_enter as in migration 0025, and the digest of a subject's memberships (in key order) in giftcards.memberships.
CREATE OR REPLACE FUNCTION gc_enter(p_scope text) RETURNS TABLE (role text, agency_id text, client_id text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
-- Its statements take arrays as parameters; planned afresh for each call (the custom plans PostgreSQL prefers for
-- them), entering a scope took twice as long.
SET plan_cache_mode = force_generic_plan AS $$
#variable_conflict use_column
DECLARE
    v_kind text := split_part(p_scope, ':', 1);
    v_rest text := substr(p_scope, length(split_part(p_scope, ':', 1)) + 2);
    v_platform boolean := false;
    v_agencies uuid[] := '{}';
    v_clients uuid[] := '{}';
    v_hash bytea;
    v_membership record;
    v_held text := '';
BEGIN
    IF v_kind = 'subject' AND v_rest <> '' THEN
        FOR v_membership IN SELECT m.role, m.agency_id, m.client_id FROM memberships m WHERE m.subject = v_rest
                            ORDER BY m.role, m.agency_id, m.client_id LOOP
            v_held := v_held || v_membership.role || '/' || coalesce(v_membership.agency_id::text, '') || '/'
                      || coalesce(v_membership.client_id::text, '') || ';';
            v_platform := v_platform OR v_membership.role = 'platform_admin';
            IF v_membership.role = 'agency_admin' THEN
                v_agencies := v_agencies || v_membership.agency_id;
            ELSIF v_membership.role IN ('client_admin', 'client_integration') THEN
                v_clients := v_clients || v_membership.client_id;
            END IF;
            role := v_membership.role;
            agency_id := v_membership.agency_id::text;
            client_id := v_membership.client_id::text;
            RETURN NEXT;
        END LOOP;
    ELSIF v_kind = 'redeem' AND v_rest ~ '^[0-9a-f]+$' THEN
        v_hash := decode(v_rest, 'hex');
        SELECT coalesce(array_agg(c.client_id), '{}') INTO v_clients
          FROM redemption_codes rc JOIN campaigns c ON c.id = rc.campaign_id
         WHERE rc.code_hash = v_hash;
    ELSIF v_kind = 'redeem-link' AND v_rest ~ '^[0-9a-f]{64}$' THEN
        SELECT coalesce(array_agg(d.client_id), '{}') INTO v_clients
          FROM deliveries d WHERE d.link_token_hash = decode(v_rest, 'hex');
    ELSIF v_kind = 'delivery' THEN
        IF v_rest ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
            SELECT coalesce(array_agg(d.client_id), '{}') INTO v_clients FROM deliveries d WHERE d.id = v_rest::uuid;
        END IF;
    ELSIF v_kind = 'delivery-message' AND v_rest <> '' THEN
        SELECT coalesce(array_agg(d.client_id), '{}') INTO v_clients
          FROM deliveries d WHERE d.provider_message_id = v_rest;
    ELSIF v_kind <> 'monitor' THEN
        v_kind := NULL;
    END IF;
    IF NOT v_platform AND v_agencies <> '{}' THEN
        v_clients := v_clients || ARRAY(SELECT cl.id FROM clients cl WHERE cl.agency_id = ANY (v_agencies));
    END IF;
    PERFORM set_config('giftcards.kind', CASE WHEN v_platform THEN 'platform'
                                              WHEN v_kind = 'redeem' THEN 'redeeming'
                                              WHEN v_kind IN ('delivery', 'delivery-message', 'redeem-link')
                                                  THEN 'delivering'
                                              ELSE coalesce(v_kind, '') END, true),
            set_config('giftcards.subject', CASE WHEN v_kind = 'subject' THEN v_rest ELSE '' END, true),
            set_config('giftcards.memberships', CASE WHEN v_kind = 'subject' THEN md5(v_held) ELSE '' END, true),
            set_config('giftcards.code_hash', coalesce(encode(v_hash, 'hex'), ''), true),
            set_config('giftcards.agencies', v_agencies::text, true),
            set_config('giftcards.clients', v_clients::text, true);
END
$$;

-- provision_card as in migration 0022, and what a warm call knew (NULL: a call after a read, which checks nothing
-- more): the campaign's client and the digest of the caller's memberships.
DROP FUNCTION provision_card(text, uuid, uuid, bytea, text, uuid, uuid, bigint, text, uuid, uuid, text, text, text, inet,
    text, text, text, text, uuid, text, uuid, double precision);
CREATE FUNCTION provision_card(
    p_scope text, p_redemption uuid, p_charge uuid, p_code_hash bytea, p_code_last4 text, p_campaign uuid, p_brand uuid,
    p_denomination bigint, p_spend_account text, p_issued_code uuid, p_retry_of uuid,
    p_recipient_id text, p_delivery_method text, p_delivery_address text, p_source_ip inet, p_user_agent text,
    p_channel text, p_subject text, p_initiator text, p_scan_start uuid, p_vendor_key text, p_lease_token uuid,
    p_lease_s double precision, p_known_client uuid, p_known_memberships text
) RETURNS TABLE (
    redemption_status text, amount_charged_cents bigint, credit_remaining_cents bigint, campaign_paused boolean,
    created_at timestamptz, fulfilled_at timestamptz,
    id text, brand_id text, denomination_cents bigint, source text, vendor text, vendor_reference text,
    code_sealed bytea, number_sealed bytea, pin_sealed bytea, code_last4 text, number_last4 text, expires_on date,
    status text, wrapped_key bytea
) LANGUAGE plpgsql AS $$
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
    v_offered boolean;
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM gc_enter(p_scope);
    SELECT c.client_id, c.status, CASE WHEN c.budget_mode = 'isolated' THEN c.account_id ELSE cl.account_id END,
           card_price_cents(p_brand, p_denomination),
           (SELECT bp.agency_price_cents FROM brand_prices bp
             WHERE bp.brand_id = p_brand AND bp.denomination_cents = p_denomination),
           (SELECT a.id FROM credit_accounts a WHERE a.system_name = p_spend_account),
           (SELECT p_denomination = ANY (b.denominations_cents) FROM brands b WHERE b.id = p_brand)
      INTO v_client, v_status, v_payer, v_price, v_agency_price, v_spend, v_offered
      FROM campaigns c JOIN clients cl ON cl.id = c.client_id
     WHERE c.id = p_campaign;
    IF p_known_memberships IS NOT NULL
       AND (p_known_memberships IS DISTINCT FROM current_setting('giftcards.memberships', true)
            OR v_client IS DISTINCT FROM p_known_client OR v_offered IS NOT TRUE) THEN
        RAISE EXCEPTION 'giftcards:stale_context: What this call was authorized on has changed; read it again.';
    END IF;
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
