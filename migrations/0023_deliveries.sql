-- Delivering cards to their recipients, by e-mail or SMS, through an outbox.
--
-- - deliveries: one row per redemption that asked for a delivery (`delivery_method` email or sms), written by a
--   trigger on redemptions in the transaction that fulfils it: a CSV provision (provision_card, one call) inserts
--   the redemption fulfilled; the vendor path and its recovery update it from pending. A provision that rolls back
--   leaves no delivery; one that commits leaves one, whatever happens to the function afterwards. The row is the
--   delivery's state: queued, sent, delivered, bounced or failed, with its attempts, last error, the provider's
--   message id and the single-use link it carried. A delivery is known by its redemption's id.
-- - The trigger's function runs as giftcard_outbox (no login, SECURITY DEFINER, search_path pinned): the application
--   role may not insert deliveries, so no call of the application can address a card to anyone but the recipient
--   the redemption named when it was charged. The application moves a delivery through its states only (column
--   grants, and the trigger deliveries_state_machine).
-- - campaign_delivery_settings: whether a campaign's messages hold a link to the redeem page (the default) or the
--   card itself. brand_messages: each brand's redemption instructions, which its messages carry.
-- - sms_consents: a client's record that a phone number opted in to its messages (when, and where it was given).
--   delivery_opt_outs: recipients who replied STOP (sms) or complained (email): platform-wide, since they answered
--   the platform's number or sender; a START reply opts a number in again. delivery_consent is the one rule of
--   whether a message may go: the provisioning read, the delivery and the resend all ask it.
-- Tenant tables carry client_id (and campaign_id where they have one) for row-level policies to key on;
-- brand_messages and delivery_opt_outs belong to no tenant. A policy on deliveries must let giftcard_outbox insert.

ALTER DOMAIN reveal_channel DROP CONSTRAINT reveal_channel;
ALTER DOMAIN reveal_channel ADD CONSTRAINT reveal_channel
    CHECK (VALUE IN ('api', 'redeem_page', 'admin', 'delivery', 'delivery_link'));

CREATE DOMAIN delivery_channel AS text CONSTRAINT delivery_channel CHECK (VALUE IN ('email', 'sms'));
CREATE DOMAIN delivery_status AS text
    CONSTRAINT delivery_status CHECK (VALUE IN ('queued', 'sent', 'delivered', 'bounced', 'failed'));
CREATE DOMAIN delivery_content AS text CONSTRAINT delivery_content CHECK (VALUE IN ('link', 'card'));
CREATE DOMAIN phone_e164 AS text CONSTRAINT phone_e164 CHECK (VALUE ~ '^\+[1-9][0-9]{6,14}$');
CREATE DOMAIN consent_source AS text CONSTRAINT consent_source CHECK (length(btrim(VALUE)) BETWEEN 1 AND 200);

-- The target of the tenant tables' (campaign_id, client_id) references: a row names its campaign and that
-- campaign's own client.
ALTER TABLE campaigns ADD CONSTRAINT campaigns_id_client_key UNIQUE (id, client_id);

CREATE TABLE campaign_delivery_settings (
    campaign_id  uuid PRIMARY KEY,
    client_id    uuid NOT NULL,
    content      delivery_content NOT NULL DEFAULT 'link',
    updated_by   subject_text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaign_delivery_settings_campaign_fkey FOREIGN KEY (campaign_id, client_id)
        REFERENCES campaigns (id, client_id)
);

CREATE TABLE brand_messages (
    brand_id      uuid PRIMARY KEY REFERENCES brands (id),
    instructions  text NOT NULL CHECK (length(btrim(instructions)) BETWEEN 1 AND 1000),
    updated_by    subject_text NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sms_consents (
    client_id    uuid NOT NULL REFERENCES clients (id),
    phone        phone_e164 NOT NULL,
    opted_in_at  timestamptz NOT NULL,
    source       consent_source NOT NULL,
    recorded_by  subject_text NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (client_id, phone)
);
CREATE INDEX sms_consents_listing ON sms_consents (client_id, recorded_at DESC, phone);

CREATE TABLE delivery_opt_outs (
    channel            delivery_channel NOT NULL,
    address            delivery_address_text NOT NULL,
    opted_out_at       timestamptz NOT NULL,
    source             consent_source NOT NULL,
    -- a START reply: the opt-out stays on record, and no longer holds
    opted_in_again_at  timestamptz,
    PRIMARY KEY (channel, address)
);

CREATE TABLE deliveries (
    id                   uuid PRIMARY KEY REFERENCES redemptions (id),
    client_id            uuid NOT NULL,
    campaign_id          uuid NOT NULL,
    channel              delivery_channel NOT NULL,
    address              delivery_address_text NOT NULL,
    content              delivery_content NOT NULL,
    status               delivery_status NOT NULL DEFAULT 'queued',
    -- the first send is 1; each resend adds one (and starts its attempts afresh)
    send_number          integer NOT NULL DEFAULT 1 CHECK (send_number >= 1),
    attempts             count_nonnegative NOT NULL DEFAULT 0,
    last_error           note_text,
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    -- a sender took the delivery and is sending it: nobody else does until lease_until
    lease_token          uuid,
    lease_until          timestamptz,
    provider_message_id  text CHECK (length(provider_message_id) BETWEEN 1 AND 256),
    -- the single-use link of the current send: a hash of its token only
    link_token_hash      bytea,
    link_expires_at      timestamptz,
    link_used_at         timestamptz,
    queued_at            timestamptz NOT NULL DEFAULT now(),
    sent_at              timestamptz,
    delivered_at         timestamptz,
    bounced_at           timestamptz,
    failed_at            timestamptz,
    complained_at        timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_campaign_fkey FOREIGN KEY (campaign_id, client_id) REFERENCES campaigns (id, client_id),
    CONSTRAINT deliveries_link_token_key UNIQUE (link_token_hash),
    CONSTRAINT deliveries_lease_shape CHECK ((lease_token IS NULL) = (lease_until IS NULL)),
    CONSTRAINT deliveries_status_shape CHECK (
        (status <> 'sent' OR sent_at IS NOT NULL) AND (status <> 'delivered' OR delivered_at IS NOT NULL)
        AND (status <> 'bounced' OR bounced_at IS NOT NULL) AND (status <> 'failed' OR failed_at IS NOT NULL)),
    CONSTRAINT deliveries_link_shape CHECK ((link_token_hash IS NULL) = (link_expires_at IS NULL))
);
-- The sweeper: queued deliveries by when they are due.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'queued';
-- SES notifications name the message they are about.
CREATE UNIQUE INDEX deliveries_provider_message ON deliveries (provider_message_id) WHERE provider_message_id IS NOT NULL;
-- Dashboards and the monitor: deliveries per client over time, and recent failures and bounces.
CREATE INDEX deliveries_by_client ON deliveries (client_id, created_at);
CREATE INDEX deliveries_by_time ON deliveries (created_at);
CREATE INDEX deliveries_problems ON deliveries (updated_at) WHERE status IN ('failed', 'bounced');

-- A delivery's states: queued -> sent -> delivered or bounced, or -> failed; a late bounce after delivered. A
-- resend starts the next send (send_number + 1) from any state but queued. Who it goes to, how, and for which
-- redemption never change.
CREATE FUNCTION deliveries_state_machine() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.client_id, NEW.campaign_id, NEW.channel, NEW.address, NEW.content, NEW.created_at)
       IS DISTINCT FROM (OLD.id, OLD.client_id, OLD.campaign_id, OLD.channel, OLD.address, OLD.content, OLD.created_at)
    THEN
        RAISE EXCEPTION 'delivery %: its recipient, channel and redemption never change', OLD.id
            USING ERRCODE = 'check_violation', TABLE = 'deliveries', CONSTRAINT = 'deliveries_state_machine';
    END IF;
    IF NEW.send_number = OLD.send_number + 1 THEN
        IF OLD.status = 'queued' OR NEW.status <> 'queued' THEN
            RAISE EXCEPTION 'delivery %: a resend starts from a finished send, queued', OLD.id
                USING ERRCODE = 'check_violation', TABLE = 'deliveries', CONSTRAINT = 'deliveries_state_machine';
        END IF;
    ELSIF NEW.send_number <> OLD.send_number
       OR NOT (NEW.status = OLD.status
               OR (OLD.status = 'queued' AND NEW.status IN ('sent', 'failed'))
               OR (OLD.status = 'sent' AND NEW.status IN ('delivered', 'bounced', 'failed'))
               OR (OLD.status = 'delivered' AND NEW.status = 'bounced')) THEN
        RAISE EXCEPTION 'delivery %: % cannot become %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', TABLE = 'deliveries', CONSTRAINT = 'deliveries_state_machine';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER deliveries_state_machine BEFORE UPDATE ON deliveries FOR EACH ROW
    EXECUTE FUNCTION deliveries_state_machine();

-- Whether a message may go to an address for a client: 'granted', 'missing' (an SMS without a recorded opt-in) or
-- 'opted_out' (a STOP reply or a complaint that no START reply lifted).
CREATE FUNCTION delivery_consent(p_client uuid, p_channel text, p_address text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN EXISTS (SELECT 1 FROM delivery_opt_outs o
                      WHERE o.channel = p_channel AND o.address = p_address AND o.opted_in_again_at IS NULL)
            THEN 'opted_out'
        WHEN p_channel = 'sms'
             AND NOT EXISTS (SELECT 1 FROM sms_consents c WHERE c.client_id = p_client AND c.phone = p_address)
            THEN 'missing'
        ELSE 'granted'
    END
$$;

-- The outbox's writer: a role nobody logs in as, which alone may insert deliveries.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_outbox') THEN
        CREATE ROLE giftcard_outbox NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT giftcard_outbox TO %I', current_user);
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO giftcard_outbox;
GRANT SELECT ON campaign_delivery_settings TO giftcard_outbox;
GRANT INSERT (id, client_id, campaign_id, channel, address, content) ON deliveries TO giftcard_outbox;
GRANT SELECT (id) ON deliveries TO giftcard_outbox;  -- ON CONFLICT (id) reads the column it arbitrates on

-- The delivery of a redemption fulfilled now, with the content its campaign's messages hold.
CREATE FUNCTION redemptions_queue_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deliveries (id, client_id, campaign_id, channel, address, content)
    VALUES (NEW.id, NEW.client_id, NEW.campaign_id, NEW.delivery_method, NEW.delivery_address,
            coalesce((SELECT s.content FROM campaign_delivery_settings s WHERE s.campaign_id = NEW.campaign_id),
                     'link'))
    ON CONFLICT (id) DO NOTHING;
    RETURN NULL;
END
$$;
ALTER FUNCTION redemptions_queue_delivery() OWNER TO giftcard_outbox;
ALTER FUNCTION redemptions_queue_delivery() SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE EXECUTE ON FUNCTION redemptions_queue_delivery() FROM PUBLIC;

CREATE TRIGGER redemptions_queue_delivery_fulfilled AFTER INSERT ON redemptions FOR EACH ROW
    WHEN (NEW.status = 'fulfilled' AND NEW.delivery_method IN ('email', 'sms') AND NEW.delivery_address IS NOT NULL)
    EXECUTE FUNCTION redemptions_queue_delivery();
CREATE TRIGGER redemptions_queue_delivery_on_fulfilment AFTER UPDATE OF status ON redemptions FOR EACH ROW
    WHEN (OLD.status <> 'fulfilled' AND NEW.status = 'fulfilled' AND NEW.delivery_method IN ('email', 'sms')
          AND NEW.delivery_address IS NOT NULL)
    EXECUTE FUNCTION redemptions_queue_delivery();

GRANT SELECT ON deliveries TO giftcard_app;
GRANT UPDATE (status, send_number, attempts, last_error, next_attempt_at, lease_token, lease_until,
              provider_message_id, link_token_hash, link_expires_at, link_used_at, queued_at, sent_at, delivered_at,
              bounced_at, failed_at, complained_at, updated_at)
    ON deliveries TO giftcard_app;
GRANT SELECT, INSERT (campaign_id, client_id, content, updated_by), UPDATE (content, updated_by, updated_at)
    ON campaign_delivery_settings TO giftcard_app;
GRANT SELECT, INSERT (brand_id, instructions, updated_by), UPDATE (instructions, updated_by, updated_at)
    ON brand_messages TO giftcard_app;
GRANT SELECT, INSERT (client_id, phone, opted_in_at, source, recorded_by),
      UPDATE (opted_in_at, source, recorded_by, recorded_at)
    ON sms_consents TO giftcard_app;
GRANT SELECT, INSERT (channel, address, opted_out_at, source), UPDATE (opted_out_at, source, opted_in_again_at)
    ON delivery_opt_outs TO giftcard_app;
