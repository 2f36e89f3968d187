-- Row-level security (migration 0022) for the delivery tables of migration 0023, and the scopes of the code that
-- delivers cards with no signed-in caller.
--
-- deliveries, campaign_delivery_settings and sms_consents are a tenant's: each row names its client. They get RLS
-- forced with policies in the style of 0022: the platform sees every row, a scope the rows of its clients; the
-- monitor reads deliveries (its sweep of the outbox and its alert on failing deliveries) and nothing else of them.
-- brand_messages (the catalogue's instructions) and delivery_opt_outs (replies to the platform's own sender and
-- number) belong to no tenant, and are left out as the catalogue is.
--
-- New scopes, entered by gc_enter (redefined here, the 0022 scopes unchanged):
--   delivery:<id>             the deliver function sending one delivery: that delivery's client. `delivery:` with no
--                             id is the function hearing STOP and START replies, which concern no tenant: it sees no
--                             tenant's rows.
--   delivery-message:<id>     the deliver function hearing what became of a message it sent (SES delivery, bounce,
--                             complaint), named by the provider's message id: that delivery's client.
--   redeem-link:<hex>         the public redeem page, for the delivered link whose token hashes to <hex>: that
--                             delivery's client (as redeem:<hex> sees its code's client).
-- All three are of the kind 'delivering'. Like the redeem page's code scope, each sees one client, through the
-- policies that already key on the scope's clients: what a delivery reads and writes (its redemption, its card's
-- reveal, the client's SMS opt-ins) and nothing of any other tenant. Unlike it, none reads redemption attempts (a
-- link needs no rate limit: its token cannot be guessed).
--
-- The delivery's own login-less roles keep doing what 0023 lets them: giftcard_outbox, reached only through the
-- trigger that writes a delivery with its fulfilled redemption, inserts deliveries and reads the campaigns' delivery
-- settings whatever the scope of the transaction that fulfilled it; giftcard_scope reads what gc_enter looks up.

-- --- entering a scope -----------------------------------------------------------------------------------------

GRANT SELECT (id, client_id, provider_message_id, link_token_hash) ON deliveries TO giftcard_scope;

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
            set_config('giftcards.code_hash', coalesce(encode(v_hash, 'hex'), ''), true),
            set_config('giftcards.agencies', v_agencies::text, true),
            set_config('giftcards.clients', v_clients::text, true);
END
$$;

-- --- the policies ----------------------------------------------------------------------------------------------

ALTER TABLE deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY deliveries_scope ON deliveries TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]));
-- The monitor finds queued deliveries left behind (it hands them to the queue again; the deliver function sends them
-- in a scope of their own) and counts failures per client: it reads, and never changes, a delivery.
CREATE POLICY deliveries_monitor ON deliveries FOR SELECT TO giftcard_app USING ((SELECT gc_flag('monitor')));
-- The trigger's role inserts (its grants: INSERT, and SELECT of the id its ON CONFLICT arbitrates on).
CREATE POLICY deliveries_outbox ON deliveries TO giftcard_outbox USING (true) WITH CHECK (true);
CREATE POLICY deliveries_scope_role ON deliveries FOR SELECT TO giftcard_scope USING (true);

ALTER TABLE campaign_delivery_settings ENABLE ROW LEVEL SECURITY;
CREATE POLICY campaign_delivery_settings_scope ON campaign_delivery_settings TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]));
CREATE POLICY campaign_delivery_settings_outbox ON campaign_delivery_settings FOR SELECT TO giftcard_outbox
    USING (true);

-- A client's record of who opted in to its messages: its scopes read it (the provisioning read, the delivery and
-- the resend ask delivery_consent), its admins write it.
ALTER TABLE sms_consents ENABLE ROW LEVEL SECURITY;
CREATE POLICY sms_consents_scope ON sms_consents TO giftcard_app
    USING ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]))
    WITH CHECK ((SELECT gc_flag('platform')) OR client_id = ANY ((SELECT gc_ids('clients'))::uuid[]));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['deliveries', 'campaign_delivery_settings', 'sms_consents'] LOOP
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY %I ON %I TO %I USING (true) WITH CHECK (true)', t || '_owner', t, current_user);
    END LOOP;
END
$$;
