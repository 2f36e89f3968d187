-- Row-level security: a second wall behind the authorization in Python.
--
-- Every transaction of the application role enters a scope before it touches a tenant's rows: `gc_enter(scope)`
-- works out from the memberships what the scope may see and keeps it in transaction-local settings
-- (set_config(..., true): connections are reused across requests, so nothing is ever set for the session). The
-- policies read those settings. A transaction that entered no scope sees no tenant row and writes none.
--
-- The scopes:
--   subject:<sub>   a signed-in caller: a platform admin sees everything; an agency admin its agencies, their
--                   clients and campaigns; a client admin or integration its clients and their campaigns.
--   redeem:<hex>    the public redeem page, for the code whose hash is <hex>: that code, its client and campaigns.
--   monitor         the scheduled monitor: what it checks and repairs (the hierarchy, accounts, the ledger,
--                   redemptions, the campaigns' codes, alerts), never memberships, reveals, attempts, audit events
--                   or idempotency keys.
--
-- gc_enter runs as giftcard_scope, a role nobody logs in as, which may read the memberships and the hierarchy;
-- the ledger's own role (giftcard_ledger) keeps reading and writing the ledger's tables whatever the scope, as it
-- is reached only through ledger_transfer. The role that migrates owns the tables: FORCE makes the policies apply
-- to it too, and its own policy lets it do what migrations and operators do.
--
-- What this wall does not stop: the application role chooses the scope it enters. It guards against a query that
-- forgot its tenant (a missing WHERE, a wrong join), not against a compromised application role; the grants and
-- triggers of migration 0019 hold money against that.
--
-- Tables without a tenant are left out: brands, brand_prices (the catalogue), card_pools, available_cards, cards and
-- card_data_keys (the platform's inventory: a card belongs to no tenant until a redemption takes it, and from then on
-- it is reached through that redemption and its reveals, which are the tenant's; its code, number and PIN are
-- sealed, and the import writes it with COPY, which PostgreSQL refuses on a table with row-level security),
-- monitor_state, ledger_check_state, schema_migrations.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_scope') THEN
        CREATE ROLE giftcard_scope NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT giftcard_scope TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO giftcard_scope;
GRANT SELECT ON memberships, agencies, clients, campaigns, redemption_codes TO giftcard_scope;

-- --- reading the scope (what the policies call) ---------------------------------------------------------------
-- Plain SQL functions with no SET clause, so that the planner inlines them into each statement (a SET clause, even
-- a pinned search_path, stops that and saves and restores settings on every call: a tenth of a millisecond per
-- statement, measured). They run with the caller's rights and read settings only, naming pg_catalog's functions.

-- gc_flag: whether the transaction entered a scope of kind `p_name` ('platform', 'monitor', 'redeeming'), or any
-- scope at all ('entered'). A subject that is no platform admin enters the kind 'subject'.
CREATE FUNCTION gc_flag(p_name text) RETURNS boolean LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(CASE p_name
                        WHEN 'entered' THEN pg_catalog.current_setting('giftcards.kind', true) <> ''
                        ELSE pg_catalog.current_setting('giftcards.kind', true) = p_name END, false)
$$;

CREATE FUNCTION gc_ids(p_name text) RETURNS uuid[] LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT coalesce(nullif(pg_catalog.current_setting('giftcards.' || p_name, true), ''), '{}')::pg_catalog.uuid[] $$;

CREATE FUNCTION gc_text(p_name text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS
$$ SELECT nullif(pg_catalog.current_setting('giftcards.' || p_name, true), '') $$;

-- --- entering a scope ------------------------------------------------------------------------------------------

-- Enter `p_scope` for the rest of the transaction, and answer the subject's memberships (none for other scopes),
-- so that loading the caller and entering its scope are one statement. An unknown kind of scope enters nothing.
CREATE FUNCTION gc_enter(p_scope text) RETURNS TABLE (role text, agency_id text, client_id text)
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
BEGIN
    IF v_kind = 'subject' AND v_rest <> '' THEN
        FOR v_membership IN SELECT m.role, m.agency_id, m.client_id FROM memberships m WHERE m.subject = v_rest LOOP
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
    ELSIF v_kind <> 'monitor' THEN
        v_kind := NULL;
    END IF;
    IF NOT v_platform AND v_agencies <> '{}' THEN
        v_clients := v_clients || ARRAY(SELECT cl.id FROM clients cl WHERE cl.agency_id = ANY (v_agencies));
    END IF;
    PERFORM set_config('giftcards.kind', CASE WHEN v_platform THEN 'platform'
                                              WHEN v_kind = 'redeem' THEN 'redeeming'
                                              ELSE coalesce(v_kind, '') END, true),
            set_config('giftcards.subject', CASE WHEN v_kind = 'subject' THEN v_rest ELSE '' END, true),
            set_config('giftcards.code_hash', coalesce(encode(v_hash, 'hex'), ''), true),
            set_config('giftcards.agencies', v_agencies::text, true),
            set_config('giftcards.clients', v_clients::text, true);
END
$$;
ALTER FUNCTION gc_enter(text) OWNER TO giftcard_scope;
REVOKE EXECUTE ON FUNCTION gc_enter(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gc_enter(text) TO giftcard_app;

-- --- the one-call use cases enter their scope themselves ------------------------------------------------------
-- A statement sent on its own is a transaction of its own: a scope entered by an earlier statement is gone, so
-- provisioning and a credit movement name theirs (NULL: the caller's transaction already entered one).
-- Sequential scans are off for the rest of the transaction, not only while the function runs (a `SET` clause): the
-- foreign keys checked at commit (a transfer's accounts) are planned then, and with row-level security on
-- credit_accounts their plans are made afresh in each transaction; planned while the table is small, they would
-- read it whole.

DROP FUNCTION provision_card(uuid, uuid, bytea, text, uuid, uuid, bigint, text, uuid, uuid, text, text, text, inet,
    text, text, text, text, uuid, text, uuid, double precision);
CREATE FUNCTION provision_card(
    p_scope text, p_redemption uuid, p_charge uuid, p_code_hash bytea, p_code_last4 text, p_campaign uuid, p_brand uuid,
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
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM gc_enter(p_scope);
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

DROP FUNCTION ledger_move(uuid, text, uuid, uuid, bigint, text, text, uuid);
CREATE FUNCTION ledger_move(
    p_scope text, p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_into_campaign uuid,
    OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    IF p_scope IS NOT NULL THEN
        PERFORM gc_enter(p_scope);
    END IF;
    IF p_into_campaign IS NOT NULL
       AND (SELECT budget_mode FROM campaigns WHERE id = p_into_campaign FOR SHARE) IS DISTINCT FROM 'isolated' THEN
        RAISE EXCEPTION 'giftcards:invalid_hierarchy: This campaign draws on its client''s shared budget; switch it to isolated before allocating to it.';
    END IF;
    SELECT t.debit_entry_id, t.debit_balance_after, t.credit_entry_id, t.credit_balance_after, t.transferred_at
      INTO debit_entry_id, debit_balance_after, credit_entry_id, credit_balance_after, transferred_at
      FROM ledger_transfer(p_transfer_id, p_kind, p_from, p_to, p_amount, p_initiator, p_notes, NULL) AS t;
END
$$;

-- What provisioning reads to decide, in the scope it names (one statement: a read and the call that follows are
-- two round trips): the campaign and its client, the brand, the redemption this code already has within that
-- client, and the caller's memberships (none for the redeem page's scope).
CREATE FUNCTION provision_context(
    p_scope text, p_campaign uuid, p_brand uuid, p_denomination bigint, p_code_hash bytea
) RETURNS TABLE (
    campaign_id text, client_id text, agency_id text, campaign_status text, brand_id text, brand_name text,
    offered boolean, existing_id text, existing_status text, existing_campaign_id text, existing_brand_id text,
    existing_denomination_cents bigint, memberships jsonb
) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_memberships jsonb;
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    SELECT coalesce(jsonb_agg(jsonb_build_object('role', m.role, 'agency_id', m.agency_id, 'client_id', m.client_id)),
                    '[]')
      INTO v_memberships FROM gc_enter(p_scope) m;
    RETURN QUERY
    SELECT c.id::text, c.client_id::text, cl.agency_id::text, c.status::text, b.id::text, b.name::text,
           p_denomination = ANY (b.denominations_cents), r.id::text, r.status::text, r.campaign_id::text,
           r.brand_id::text, r.denomination_cents::bigint, v_memberships
      FROM campaigns c JOIN clients cl ON cl.id = c.client_id
      LEFT JOIN brands b ON b.id = p_brand
      LEFT JOIN redemptions r ON r.client_id = c.client_id AND r.redemption_code_hash = p_code_hash
     WHERE c.id = p_campaign;
END
$$;

-- --- the policies ----------------------------------------------------------------------------------------------
-- Each condition's scope reads are scalar subqueries (as few as may be), so the server reads them once per statement,
-- not per row.

ALTER TABLE agencies ENABLE ROW LEVEL SECURITY;
CREATE POLICY agencies_scope ON agencies TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor')) OR id = ANY ((SELECT gc_ids('agencies'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform')));

ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
CREATE POLICY clients_scope ON clients TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor')) OR id = ANY ((SELECT gc_ids('clients'))::uuid[])
           OR agency_id = ANY ((SELECT gc_ids('agencies'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform')) OR agency_id = ANY ((SELECT gc_ids('agencies'))::uuid[]));

ALTER TABLE campaigns ENABLE ROW LEVEL SECURITY;
CREATE POLICY campaigns_scope ON campaigns TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform') OR gc_flag('monitor'))
                OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]));

-- The accounts of the agencies and clients a scope sees: the parents under which it may open an account (a new
-- client's or campaign's, whose owner is not written yet when its account is). Read only by the policies below,
-- and by those only for a client's or campaign's account no other condition admits (never for the system accounts
-- provisioning reads on every call).
CREATE FUNCTION gc_parent_accounts() RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    SELECT ARRAY(SELECT a.account_id FROM agencies a WHERE a.id = ANY (gc_ids('agencies'))
                 UNION ALL
                 SELECT cl.account_id FROM clients cl WHERE cl.id = ANY (gc_ids('clients')))
$$;
ALTER FUNCTION gc_parent_accounts() OWNER TO giftcard_scope;
REVOKE EXECUTE ON FUNCTION gc_parent_accounts() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION gc_parent_accounts() TO giftcard_app;

-- An account is seen by the scope that sees its owner (a campaign's through the campaign), and a new one by the
-- scope that sees its parent. The system accounts (spend, ...) may be read by any scope: provisioning names the
-- spend account it charges to.
ALTER TABLE credit_accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_accounts_scope ON credit_accounts TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR (owner_type = 'client' AND owner_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
           OR (owner_type = 'agency' AND owner_id = ANY ((SELECT gc_ids('agencies'))::uuid[]))
           OR (owner_type = 'campaign' AND EXISTS (SELECT 1 FROM campaigns c WHERE c.id = credit_accounts.owner_id))
           OR (owner_type IN ('client', 'campaign') AND parent_id = ANY ((SELECT gc_parent_accounts())::uuid[])))
    WITH CHECK ((SELECT gc_flag('platform'))
                OR (owner_type IN ('client', 'campaign') AND parent_id = ANY ((SELECT gc_parent_accounts())::uuid[])));
CREATE POLICY credit_accounts_system ON credit_accounts FOR SELECT TO giftcard_app
    USING (owner_type = 'system' AND (SELECT gc_flag('entered')));
CREATE POLICY credit_accounts_ledger ON credit_accounts TO giftcard_ledger USING (true) WITH CHECK (true);

ALTER TABLE credit_transfers ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_transfers_scope ON credit_transfers FOR SELECT TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR EXISTS (SELECT 1 FROM credit_accounts a WHERE a.id = credit_transfers.from_account_id AND a.owner_type <> 'system')
           OR EXISTS (SELECT 1 FROM credit_accounts a WHERE a.id = credit_transfers.to_account_id AND a.owner_type <> 'system'));
CREATE POLICY credit_transfers_ledger ON credit_transfers TO giftcard_ledger USING (true) WITH CHECK (true);

ALTER TABLE credit_entries ENABLE ROW LEVEL SECURITY;
CREATE POLICY credit_entries_scope ON credit_entries FOR SELECT TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR EXISTS (SELECT 1 FROM credit_accounts a WHERE a.id = credit_entries.account_id AND a.owner_type <> 'system'));
CREATE POLICY credit_entries_ledger ON credit_entries TO giftcard_ledger USING (true) WITH CHECK (true);

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
CREATE POLICY memberships_scope ON memberships FOR SELECT TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR subject = (SELECT gc_text('subject')));
CREATE POLICY memberships_scope_role ON memberships FOR SELECT TO giftcard_scope USING (true);

ALTER TABLE idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_scope ON idempotency_keys TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR scope = (SELECT gc_text('subject')))
    WITH CHECK ((SELECT gc_flag('platform')) OR scope = (SELECT gc_text('subject')));

ALTER TABLE redemption_codes ENABLE ROW LEVEL SECURITY;
-- The codes of the campaigns a scope sees (the redeem page's: its code's client's; a campaign's cheapest card is
-- priced from the brands of its issued codes), or the one code whose hash the redeem page's scope names.
CREATE POLICY redemption_codes_scope ON redemption_codes TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR code_hash = decode((SELECT gc_text('code_hash')), 'hex')
           OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = redemption_codes.campaign_id))
    WITH CHECK ((SELECT gc_flag('platform')) OR code_hash = decode((SELECT gc_text('code_hash')), 'hex')
                OR EXISTS (SELECT 1 FROM campaigns c WHERE c.id = redemption_codes.campaign_id));
CREATE POLICY redemption_codes_scope_role ON redemption_codes FOR SELECT TO giftcard_scope USING (true);

ALTER TABLE redemptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY redemptions_scope ON redemptions TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform') OR gc_flag('monitor'))
                OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]));

ALTER TABLE card_reveals ENABLE ROW LEVEL SECURITY;
-- Who saw a card, and from where: the redemption's tenant's (the monitor, which sees every redemption, does not).
CREATE POLICY card_reveals_scope ON card_reveals TO giftcard_app
    USING ((SELECT gc_flag('platform'))
           OR (NOT (SELECT gc_flag('monitor'))
               AND EXISTS (SELECT 1 FROM redemptions r WHERE r.id = card_reveals.redemption_id)))
    WITH CHECK ((SELECT gc_flag('platform'))
                OR (NOT (SELECT gc_flag('monitor'))
                    AND EXISTS (SELECT 1 FROM redemptions r WHERE r.id = card_reveals.redemption_id)));

ALTER TABLE redemption_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY redemption_attempts_scope ON redemption_attempts TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR (SELECT gc_flag('redeeming')))
    WITH CHECK ((SELECT gc_flag('platform')) OR (SELECT gc_flag('redeeming')));

-- Thresholds, alerts and audit events name their entity: an agency, client or campaign is the tenant's, and so is
-- a card handed out to one of its redemptions; other entities (pools, accounts, the system) are the platform's. Defaults (no entity) are read by every scope.
CREATE FUNCTION gc_sees_entity(p_type text, p_id uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT CASE p_type
        WHEN 'agency' THEN p_id = ANY (public.gc_ids('agencies'))
        WHEN 'client' THEN p_id = ANY (public.gc_ids('clients'))
        WHEN 'campaign' THEN EXISTS (SELECT 1 FROM public.campaigns c WHERE c.id = p_id)
        WHEN 'card' THEN EXISTS (SELECT 1 FROM public.redemptions r WHERE r.card_id = p_id)
        ELSE false END
$$;

ALTER TABLE alert_thresholds ENABLE ROW LEVEL SECURITY;
CREATE POLICY alert_thresholds_scope ON alert_thresholds TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor'))
           OR (entity_id IS NULL AND (SELECT gc_flag('entered'))) OR gc_sees_entity(entity_type, entity_id))
    WITH CHECK ((SELECT gc_flag('platform')) OR gc_sees_entity(entity_type, entity_id));

ALTER TABLE system_alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY system_alerts_scope ON system_alerts TO giftcard_app
    USING ((SELECT gc_flag('platform') OR gc_flag('monitor')) OR gc_sees_entity(entity_type, entity_id))
    WITH CHECK ((SELECT gc_flag('platform') OR gc_flag('monitor'))
                OR gc_sees_entity(entity_type, entity_id));

-- Any scope may raise an alert (a card that fails its integrity check, a brand every vendor refused, while a
-- customer redeems), and none but the platform's and the monitor's may read the alerts: raising one goes through
-- raise_system_alert, which runs as giftcard_alerts, a role nobody logs in as that may write and read them all.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_alerts') THEN
        CREATE ROLE giftcard_alerts NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT giftcard_alerts TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO giftcard_alerts;
GRANT SELECT, INSERT, UPDATE ON system_alerts TO giftcard_alerts;
GRANT EXECUTE ON FUNCTION alert_severity_rank(text) TO giftcard_alerts;
CREATE POLICY system_alerts_alerts ON system_alerts TO giftcard_alerts USING (true) WITH CHECK (true);

-- Open an alert for (type, entity), or refresh the open one: a worse severity reopens an acknowledged one.
CREATE FUNCTION raise_system_alert(
    p_type text, p_severity text, p_entity_type text, p_entity_id uuid, p_message text, p_details jsonb
) RETURNS TABLE (id text, created boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT gc_flag('entered') THEN
        RAISE EXCEPTION 'raise_system_alert: no scope entered' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    INSERT INTO system_alerts AS a (type, severity, entity_type, entity_id, message, details)
    VALUES (p_type, p_severity, p_entity_type, p_entity_id, p_message, p_details)
    ON CONFLICT (type, entity_type, entity_id) WHERE status <> 'resolved' DO UPDATE
       SET severity = EXCLUDED.severity, message = EXCLUDED.message, details = EXCLUDED.details,
           occurrences = a.occurrences + 1, last_seen = now(),
           status = CASE WHEN alert_severity_rank(EXCLUDED.severity) > alert_severity_rank(a.severity) THEN 'open'
                         ELSE a.status END
    RETURNING a.id::text, (a.xmax = 0);
END
$$;
ALTER FUNCTION raise_system_alert(text, text, text, uuid, text, jsonb) OWNER TO giftcard_alerts;
REVOKE EXECUTE ON FUNCTION raise_system_alert(text, text, text, uuid, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION raise_system_alert(text, text, text, uuid, text, jsonb) TO giftcard_app;

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_events_scope ON audit_events FOR SELECT TO giftcard_app
    USING ((SELECT gc_flag('platform'))
           OR (NOT (SELECT gc_flag('monitor')) AND gc_sees_entity(entity_type, entity_id)));
CREATE POLICY audit_events_append ON audit_events FOR INSERT TO giftcard_app
    WITH CHECK ((SELECT gc_flag('entered')));

-- The ledger's check of each transfer, at commit, reads both of its entries whatever the scope that moved the
-- credit (a charge's second entry is the spend account's): it runs as the ledger's role, as the transfer did.
ALTER FUNCTION ledger_check_transfer() OWNER TO giftcard_ledger;
ALTER FUNCTION ledger_check_transfer() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE EXECUTE ON FUNCTION ledger_check_transfer() FROM PUBLIC;

-- The scope role reads what gc_enter reads; the migrating role (the tables' owner) keeps doing what migrations and
-- operators do.
CREATE POLICY agencies_scope_role ON agencies FOR SELECT TO giftcard_scope USING (true);
CREATE POLICY clients_scope_role ON clients FOR SELECT TO giftcard_scope USING (true);
CREATE POLICY campaigns_scope_role ON campaigns FOR SELECT TO giftcard_scope USING (true);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['agencies', 'clients', 'campaigns', 'credit_accounts', 'credit_transfers',
                             'credit_entries', 'memberships', 'idempotency_keys', 'redemption_codes', 'redemptions',
                             'card_reveals', 'redemption_attempts', 'alert_thresholds', 'system_alerts',
                             'audit_events'] LOOP
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO %I USING (true) WITH CHECK (true)', t || '_owner', t, current_user);
    END LOOP;
END
$$;
