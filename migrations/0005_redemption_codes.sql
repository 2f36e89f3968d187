-- Redemption codes this system issues to end customers, and every attempt to redeem one.
-- A code is stored only as its keyed hash (crypto.keyed_hash('redemption_code', canonical code)) and its last
-- four symbols; the code itself exists in clear only in the answer that issued it.

CREATE TABLE redemption_codes (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign_id         uuid NOT NULL REFERENCES campaigns (id),
    brand_id            uuid NOT NULL REFERENCES brands (id),
    denomination_cents  bigint NOT NULL CHECK (denomination_cents > 0),
    code_hash           bytea NOT NULL CHECK (length(code_hash) = 32),
    last4               text NOT NULL CHECK (last4 ~ '^[0-9A-HJKMNP-TV-Z]{4}$'),
    batch_id            uuid NOT NULL,
    status              text NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'redeemed', 'void')),
    issued_by           text NOT NULL CHECK (length(issued_by) BETWEEN 1 AND 256),
    issued_at           timestamptz NOT NULL DEFAULT now(),
    redeemed_at         timestamptz,
    voided_at           timestamptz,
    voided_by           text CHECK (length(voided_by) <= 256),
    CONSTRAINT redemption_codes_hash_unique UNIQUE (code_hash),
    CONSTRAINT redemption_codes_redeemed_shape CHECK ((status = 'redeemed') = (redeemed_at IS NOT NULL)),
    CONSTRAINT redemption_codes_void_shape CHECK ((status = 'void') = (voided_at IS NOT NULL AND voided_by IS NOT NULL))
);
CREATE INDEX redemption_codes_listing ON redemption_codes (campaign_id, issued_at, id);

-- A code only moves forward: issued -> redeemed or issued -> void, and what it is for never changes.
CREATE FUNCTION redemption_codes_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.campaign_id, NEW.brand_id, NEW.denomination_cents, NEW.code_hash, NEW.last4, NEW.batch_id,
        NEW.issued_by, NEW.issued_at)
       IS DISTINCT FROM (OLD.campaign_id, OLD.brand_id, OLD.denomination_cents, OLD.code_hash, OLD.last4,
                         OLD.batch_id, OLD.issued_by, OLD.issued_at) THEN
        RAISE EXCEPTION 'giftcards:immutable: an issued code cannot be changed, only redeemed or voided'
            USING ERRCODE = 'P0001';
    END IF;
    IF NEW.status <> OLD.status AND OLD.status <> 'issued' THEN
        RAISE EXCEPTION 'giftcards:code_state: a % code cannot become %', OLD.status, NEW.status
            USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER redemption_codes_forward_only BEFORE UPDATE ON redemption_codes
    FOR EACH ROW EXECUTE FUNCTION redemption_codes_forward_only();

-- Every attempt at the public redeem route: when, from where, with what outcome. Failed attempts carry nothing
-- of the code that was typed; a recognised code is referenced by its id only.
CREATE TABLE redemption_attempts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    source_ip       inet NOT NULL,
    -- what the rate limit counts against: the address for IPv4, its /64 for IPv6
    source_network  cidr NOT NULL,
    user_agent      text CHECK (length(user_agent) <= 512),
    outcome         text NOT NULL CHECK (outcome IN ('redeemed', 'replayed', 'invalid_code', 'rate_limited',
                                                     'campaign_not_active', 'insufficient_credit', 'unavailable',
                                                     'rejected', 'error')),
    code_id         uuid REFERENCES redemption_codes (id),
    CONSTRAINT redemption_attempts_source_in_network CHECK (source_ip <<= source_network),
    CONSTRAINT redemption_attempts_nothing_of_unknown_codes CHECK (
        outcome NOT IN ('invalid_code', 'rate_limited') OR code_id IS NULL)
);
-- The limiter: recent failures per network.
CREATE INDEX redemption_attempts_failures ON redemption_attempts (source_network, at DESC)
    WHERE outcome = 'invalid_code';
-- Fraud review: newest first, overall and per address.
CREATE INDEX redemption_attempts_listing ON redemption_attempts (at DESC, id DESC);
CREATE INDEX redemption_attempts_by_ip ON redemption_attempts (source_ip, at DESC);

CREATE FUNCTION redemption_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'giftcards:append_only: redemption attempts are an audit trail and cannot be changed'
        USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER redemption_attempts_append_only BEFORE UPDATE OR DELETE ON redemption_attempts
    FOR EACH ROW EXECUTE FUNCTION redemption_attempts_append_only();
CREATE TRIGGER redemption_attempts_no_truncate BEFORE TRUNCATE ON redemption_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION redemption_attempts_append_only();

GRANT SELECT, INSERT ON redemption_codes TO giftcard_app;
GRANT UPDATE (status, redeemed_at, voided_at, voided_by) ON redemption_codes TO giftcard_app;
GRANT SELECT, INSERT ON redemption_attempts TO giftcard_app;
