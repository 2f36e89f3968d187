-- CSV card pools and the cards themselves (imported from CSV or bought from a vendor API).
--
-- Card secrets are never stored in plaintext: code, number and PIN are AES-GCM ciphertexts under a data key
-- (stored wrapped by KMS in card_data_keys) with the card id as associated data; code_hash is a keyed hash
-- (HMAC) for duplicate detection, and the last 4 characters are kept for display.
--
-- Available cards live in their own narrow table, one row per unclaimed card, deleted by the claim. A claim
-- reads it through its primary key (pool_id, card_id): the only path the planner has, so the plan cannot
-- degrade on a freshly imported, never analysed pool into a walk past every card already claimed. Stock per
-- pool is counted from that table; nothing that every claim would update is kept on the pool row.

CREATE TABLE card_pools (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    brand_id             uuid NOT NULL REFERENCES brands (id),
    denomination_cents   bigint NOT NULL CHECK (denomination_cents > 0),
    cost_per_card_cents  bigint NOT NULL CHECK (cost_per_card_cents > 0),
    low_stock_threshold  integer NOT NULL DEFAULT 50 CHECK (low_stock_threshold >= 0),
    -- cards ever imported into the pool: changed only by imports (claims never touch the pool row), so
    -- claimed = card_count - (rows in available_cards)
    card_count           bigint NOT NULL DEFAULT 0 CHECK (card_count >= 0),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT card_pools_card_shape UNIQUE (id, brand_id, denomination_cents)  -- the target of cards_pool_fkey
);
CREATE INDEX card_pools_listing ON card_pools (created_at, id);
CREATE INDEX card_pools_brand_listing ON card_pools (brand_id, created_at, id);
CREATE INDEX card_pools_waterfall ON card_pools (brand_id, denomination_cents, cost_per_card_cents, created_at, id);

-- A pool sells one of the denominations its brand offers.
CREATE FUNCTION card_pools_check_denomination() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    offered bigint[];
BEGIN
    SELECT denominations_cents INTO offered FROM brands WHERE id = NEW.brand_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'giftcards:unknown_brand: brand_id: no brand with id %', NEW.brand_id USING ERRCODE = 'P0001';
    END IF;
    IF NOT NEW.denomination_cents = ANY (offered) THEN
        RAISE EXCEPTION 'giftcards:denomination_not_offered: denomination: the brand offers only %',
            (SELECT string_agg(trim_scale(d / 100.0)::text, ', ' ORDER BY d) FROM unnest(offered) AS d)
            USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER card_pools_denomination_offered BEFORE INSERT OR UPDATE OF brand_id, denomination_cents ON card_pools
    FOR EACH ROW EXECUTE FUNCTION card_pools_check_denomination();

-- Data keys, stored only wrapped (KMS ciphertext; locally wrapped by the master key in GIFTCARD_HOME).
-- One per import and one per running process for vendor cards, so encrypting a card costs no KMS call.
CREATE TABLE card_data_keys (
    id           uuid PRIMARY KEY,
    wrapped_key  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cards (
    id                  uuid PRIMARY KEY,
    pool_id             uuid,
    -- a CSV card's brand and denomination are its pool's (cards_pool_fkey); a vendor card's come from the
    -- redemption it was bought for, whose brand_id references brands
    brand_id            uuid NOT NULL,
    denomination_cents  bigint NOT NULL CHECK (denomination_cents > 0),
    -- what the card cost us: the pool's cost_per_card for CSV cards, the vendor's price for API cards
    cost_cents          bigint NOT NULL CHECK (cost_cents > 0),
    source              text NOT NULL CHECK (source IN ('csv', 'api')),
    vendor              text CHECK (length(vendor) BETWEEN 1 AND 64),
    vendor_reference    text CHECK (length(vendor_reference) BETWEEN 1 AND 256),
    key_id              uuid NOT NULL REFERENCES card_data_keys (id),
    code_sealed         bytea NOT NULL,
    number_sealed       bytea,
    pin_sealed          bytea,
    code_hash           bytea NOT NULL CONSTRAINT cards_code_hash_unique UNIQUE,
    code_last4          text NOT NULL CHECK (length(code_last4) BETWEEN 1 AND 4),
    number_last4        text CHECK (length(number_last4) BETWEEN 1 AND 4),
    expires_on          date,
    status              text NOT NULL CHECK (status IN ('available', 'claimed')),
    claimed_at          timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cards_source_shape CHECK (
        (source = 'csv' AND pool_id IS NOT NULL AND vendor IS NULL AND vendor_reference IS NULL)
        OR (source = 'api' AND pool_id IS NULL AND vendor IS NOT NULL AND status = 'claimed')
    ),
    CONSTRAINT cards_claimed_at CHECK ((status = 'claimed') = (claimed_at IS NOT NULL)),
    -- One foreign key check per card rather than one for the pool and one for the brand: each check costs about
    -- a tenth of a 100,000-card import.
    CONSTRAINT cards_pool_fkey FOREIGN KEY (pool_id, brand_id, denomination_cents)
        REFERENCES card_pools (id, brand_id, denomination_cents)
) WITH (fillfactor = 90);  -- room on each page so that a claim's update stays a HOT update (no index writes)
-- A vendor's card is stored once, however often its order is looked up again.
CREATE UNIQUE INDEX cards_vendor_reference_unique ON cards (vendor, vendor_reference) WHERE vendor_reference IS NOT NULL;

-- A card is claimed at most once: a claimed card never changes again, whoever asks.
CREATE FUNCTION cards_reject_change_after_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'giftcards:card_already_claimed: card % was already claimed', OLD.id USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER cards_claimed_once BEFORE UPDATE ON cards
    FOR EACH ROW WHEN (OLD.status = 'claimed') EXECUTE FUNCTION cards_reject_change_after_claim();

-- One row per unclaimed CSV card: an index of cards (status 'available') kept by hand, written only together with
-- its card in one transaction (import: both inserted; claim: deleted in the statement that marks the card
-- claimed), and checked by cards.check_inventory. No foreign keys: like an index it holds nothing of its own,
-- and each check would add about a tenth to a 100,000-card import. Claims delete from it, so vacuum it often:
-- the dead index entries a claim leaves behind are skipped cheaply, but only vacuum removes them.
CREATE TABLE available_cards (
    pool_id  uuid NOT NULL,
    card_id  uuid NOT NULL,
    PRIMARY KEY (pool_id, card_id)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);

-- The application imports into session-private staging tables (never WAL-logged, dropped at commit).
DO $$
BEGIN
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO giftcard_app', current_database());
END
$$;

GRANT SELECT, INSERT ON card_pools, card_data_keys, cards TO giftcard_app;
GRANT UPDATE (card_count) ON card_pools TO giftcard_app;
GRANT UPDATE (status, claimed_at) ON cards TO giftcard_app;
-- UPDATE (card_id) only because PostgreSQL requires an UPDATE grant for SELECT ... FOR UPDATE SKIP LOCKED;
-- the claim never updates this table, and cards_claimed_once stops any card from being claimed twice.
GRANT SELECT, INSERT, DELETE, UPDATE (card_id) ON available_cards TO giftcard_app;
