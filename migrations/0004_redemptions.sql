-- Redemptions: one row per attempt to turn a redemption code into a gift card, holding its charge (and refund),
-- its card, what it cost and what was charged (profit), and the vendor order's idempotency key and retry state.
-- Card reveals: an append-only record of every time a card's secrets were shown, and to whom.

CREATE TABLE redemptions (
    id                    uuid PRIMARY KEY,
    -- keyed hash (crypto.keyed_hash('redemption_code', code)); the plaintext code is never stored. NULL only on a
    -- failed redemption whose code was tried again: the code then belongs to the newer redemption (retried_by).
    redemption_code_hash  bytea,
    code_last4            text NOT NULL CHECK (length(code_last4) BETWEEN 1 AND 4),
    retried_by            uuid,
    campaign_id           uuid NOT NULL REFERENCES campaigns (id),
    client_id             uuid NOT NULL REFERENCES clients (id),
    brand_id              uuid NOT NULL REFERENCES brands (id),
    denomination_cents    bigint NOT NULL CHECK (denomination_cents > 0),
    status                text NOT NULL CHECK (status IN ('pending', 'fulfilled', 'failed')),
    source                text CHECK (source IN ('csv', 'api')),
    card_id               uuid REFERENCES cards (id),
    paying_account_id     uuid NOT NULL REFERENCES credit_accounts (id),
    charge_transfer_id    uuid NOT NULL REFERENCES credit_transfers (id),
    refund_transfer_id    uuid REFERENCES credit_transfers (id),
    amount_charged_cents  bigint NOT NULL CHECK (amount_charged_cents > 0),
    cost_basis_cents      bigint CHECK (cost_basis_cents >= 0),
    agency_price_cents    bigint CHECK (agency_price_cents > 0),
    -- the charge left the paying account unable to pay for the campaign's cheapest card: the campaign was paused
    campaign_paused       boolean NOT NULL DEFAULT false,
    -- vendor path: the vendor last called (whose outcome may be unknown) or that sold the card
    vendor                text,
    vendor_key            text,
    vendor_attempts       integer NOT NULL DEFAULT 0 CHECK (vendor_attempts >= 0),
    last_vendor_error     text CHECK (length(last_vendor_error) <= 500),
    -- pending: no one else calls a vendor for it before this time; lease_token names the worker that may
    next_attempt_at       timestamptz,
    lease_token           uuid,
    recipient_id          text CHECK (length(recipient_id) <= 200),
    delivery_method       text CHECK (length(delivery_method) <= 50),
    delivery_address      text CHECK (length(delivery_address) <= 320),
    source_ip             inet,
    user_agent            text CHECK (length(user_agent) <= 512),
    created_at            timestamptz NOT NULL DEFAULT now(),
    fulfilled_at          timestamptz,
    failed_at             timestamptz,
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT redemptions_code_hash_key UNIQUE (redemption_code_hash),
    CONSTRAINT redemptions_card_once UNIQUE (card_id),
    CONSTRAINT redemptions_charge_once UNIQUE (charge_transfer_id),
    CONSTRAINT redemptions_refund_once UNIQUE (refund_transfer_id),
    CONSTRAINT redemptions_vendor_key_key UNIQUE (vendor_key),
    CONSTRAINT redemptions_retried_by_fkey FOREIGN KEY (retried_by) REFERENCES redemptions (id)
        DEFERRABLE INITIALLY DEFERRED,
    -- the vendor key is derived from the redemption id, so a retry can never use another key
    CONSTRAINT redemptions_vendor_key_derived CHECK (vendor_key IS NULL OR vendor_key = 'gc-' || replace(id::text, '-', '')),
    CONSTRAINT redemptions_code_owned CHECK ((redemption_code_hash IS NULL) = (retried_by IS NOT NULL)),
    CONSTRAINT redemptions_retry_of_failed CHECK (retried_by IS NULL OR status = 'failed'),
    CONSTRAINT redemptions_pending_shape CHECK (status <> 'pending' OR (
        card_id IS NULL AND refund_transfer_id IS NULL AND vendor_key IS NOT NULL AND next_attempt_at IS NOT NULL)),
    CONSTRAINT redemptions_fulfilled_shape CHECK (status <> 'fulfilled' OR (
        card_id IS NOT NULL AND source IS NOT NULL AND cost_basis_cents IS NOT NULL AND fulfilled_at IS NOT NULL
        AND refund_transfer_id IS NULL)),
    CONSTRAINT redemptions_failed_shape CHECK (status <> 'failed' OR (
        refund_transfer_id IS NOT NULL AND failed_at IS NOT NULL AND card_id IS NULL)),
    CONSTRAINT redemptions_source_when_fulfilled CHECK ((source IS NOT NULL) = (status = 'fulfilled'))
);
-- The monitor: redemptions stuck pending (oldest first) and failures in the last hour.
CREATE INDEX redemptions_pending ON redemptions (created_at) WHERE status = 'pending';
CREATE INDEX redemptions_failed ON redemptions (failed_at) WHERE status = 'failed';
-- Listings and profit totals, newest first, per campaign and per client.
CREATE INDEX redemptions_by_campaign ON redemptions (campaign_id, created_at DESC, id DESC);
CREATE INDEX redemptions_by_client ON redemptions (client_id, created_at DESC, id DESC);
CREATE INDEX redemptions_listing ON redemptions (created_at DESC, id DESC);

CREATE TABLE card_reveals (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    redemption_id  uuid NOT NULL REFERENCES redemptions (id),
    card_id        uuid NOT NULL REFERENCES cards (id),
    revealed_at    timestamptz NOT NULL DEFAULT now(),
    channel        text NOT NULL CHECK (channel IN ('api', 'redeem_page', 'admin')),
    subject        text CHECK (length(subject) <= 256),
    source_ip      inet,
    user_agent     text CHECK (length(user_agent) <= 512)
);
CREATE INDEX card_reveals_redemption ON card_reveals (redemption_id, revealed_at);
CREATE INDEX card_reveals_card ON card_reveals (card_id, revealed_at);

-- An audit trail is only worth something if it cannot be edited.
CREATE FUNCTION card_reveals_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'giftcards:append_only: card reveals are an audit trail and cannot be changed' USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER card_reveals_append_only BEFORE UPDATE OR DELETE ON card_reveals
    FOR EACH ROW EXECUTE FUNCTION card_reveals_append_only();
CREATE TRIGGER card_reveals_no_truncate BEFORE TRUNCATE ON card_reveals
    FOR EACH STATEMENT EXECUTE FUNCTION card_reveals_append_only();

GRANT SELECT, INSERT, UPDATE ON redemptions TO giftcard_app;
GRANT SELECT, INSERT ON card_reveals TO giftcard_app;
