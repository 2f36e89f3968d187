-- The rules on the rows of the ledger, card and redemption tables are checked as before, but no longer read back
-- and planned at every statement.
--
-- PostgreSQL reads a table's CHECK constraints back from their stored text, and plans them, at every statement
-- that inserts into or updates the table: all of them, whichever columns the statement writes. A provision
-- inserts a redemption (20 constraints), updates a card (10), inserts a transfer (5) and a reveal (3), and
-- updates two accounts (3 each). Measured with perf on one connection, that was 18% of the server's time per
-- provision, much of it while the budget's row was locked.
-- - A rule on one value becomes a domain. A domain's constraints are read and planned once per session, and are
--   checked wherever a value is stored in a column of that type, as the CHECK constraints were.
-- - The rules over several columns of a row become one CHECK per table, calling a function with the row. Its
--   stored text is a short function call; the function is compiled once per session, and reports a broken rule
--   under the name its CHECK constraint had.
-- - credit_accounts_balance_nonnegative, the rule money depends on, stays the plain CHECK it was, and so does
--   credit_entries_amount_cents_check (short, and see below).
--
-- Each column first takes its domain without constraints, a type change that rewrites no table; then each domain
-- takes its constraint, which checks the rows already stored. The indexes over an expression or with a condition
-- on a changed column are built again, under the table's lock: redemptions_pending, redemptions_failed,
-- cards_vendor_reference_unique, credit_accounts_one_platform and credit_accounts_owner. On a large deployment,
-- apply this migration when a pause of that length is acceptable. credit_entries, the largest table, keeps its
-- CHECK, so its index on (transfer_id, amount_cents > 0) is not rebuilt.

CREATE DOMAIN cents_positive AS bigint;
CREATE DOMAIN cents_nonnegative AS bigint;
CREATE DOMAIN count_nonnegative AS integer;
CREATE DOMAIN last4 AS text;
CREATE DOMAIN account_owner_type AS text;
CREATE DOMAIN transfer_kind AS text;
CREATE DOMAIN card_source AS text;
CREATE DOMAIN card_status AS text;
CREATE DOMAIN redemption_status AS text;
CREATE DOMAIN reveal_channel AS text;
CREATE DOMAIN vendor_name AS text;
CREATE DOMAIN vendor_reference AS text;
CREATE DOMAIN note_text AS text;
CREATE DOMAIN subject_text AS text;
CREATE DOMAIN user_agent_text AS text;
CREATE DOMAIN recipient_text AS text;
CREATE DOMAIN delivery_method_text AS text;
CREATE DOMAIN delivery_address_text AS text;

ALTER TABLE credit_accounts
    ALTER COLUMN owner_type TYPE account_owner_type,
    DROP CONSTRAINT credit_accounts_owner_type_check;

ALTER TABLE credit_transfers
    ALTER COLUMN kind TYPE transfer_kind,
    ALTER COLUMN amount_cents TYPE cents_positive,
    ALTER COLUMN notes TYPE note_text,
    DROP CONSTRAINT credit_transfers_kind_check,
    DROP CONSTRAINT credit_transfers_amount_cents_check,
    DROP CONSTRAINT credit_transfers_notes_check;

-- A trigger's condition pins the type of the column it reads: cards_claimed_once is put back as it was.
DROP TRIGGER cards_claimed_once ON cards;
ALTER TABLE cards
    ALTER COLUMN denomination_cents TYPE cents_positive,
    ALTER COLUMN cost_cents TYPE cents_positive,
    ALTER COLUMN source TYPE card_source,
    ALTER COLUMN vendor TYPE vendor_name,
    ALTER COLUMN vendor_reference TYPE vendor_reference,
    ALTER COLUMN code_last4 TYPE last4,
    ALTER COLUMN number_last4 TYPE last4,
    ALTER COLUMN status TYPE card_status,
    DROP CONSTRAINT cards_denomination_cents_check,
    DROP CONSTRAINT cards_cost_cents_check,
    DROP CONSTRAINT cards_source_check,
    DROP CONSTRAINT cards_vendor_check,
    DROP CONSTRAINT cards_vendor_reference_check,
    DROP CONSTRAINT cards_code_last4_check,
    DROP CONSTRAINT cards_number_last4_check,
    DROP CONSTRAINT cards_status_check;
CREATE TRIGGER cards_claimed_once BEFORE UPDATE ON cards
    FOR EACH ROW WHEN (OLD.status = 'claimed') EXECUTE FUNCTION cards_reject_change_after_claim();

ALTER TABLE redemptions
    ALTER COLUMN code_last4 TYPE last4,
    ALTER COLUMN denomination_cents TYPE cents_positive,
    ALTER COLUMN status TYPE redemption_status,
    ALTER COLUMN source TYPE card_source,
    ALTER COLUMN amount_charged_cents TYPE cents_positive,
    ALTER COLUMN cost_basis_cents TYPE cents_nonnegative,
    ALTER COLUMN agency_price_cents TYPE cents_positive,
    ALTER COLUMN vendor_attempts TYPE count_nonnegative,
    ALTER COLUMN last_vendor_error TYPE note_text,
    ALTER COLUMN recipient_id TYPE recipient_text,
    ALTER COLUMN delivery_method TYPE delivery_method_text,
    ALTER COLUMN delivery_address TYPE delivery_address_text,
    ALTER COLUMN user_agent TYPE user_agent_text,
    DROP CONSTRAINT redemptions_code_last4_check,
    DROP CONSTRAINT redemptions_denomination_cents_check,
    DROP CONSTRAINT redemptions_status_check,
    DROP CONSTRAINT redemptions_source_check,
    DROP CONSTRAINT redemptions_amount_charged_cents_check,
    DROP CONSTRAINT redemptions_cost_basis_cents_check,
    DROP CONSTRAINT redemptions_agency_price_cents_check,
    DROP CONSTRAINT redemptions_vendor_attempts_check,
    DROP CONSTRAINT redemptions_last_vendor_error_check,
    DROP CONSTRAINT redemptions_recipient_id_check,
    DROP CONSTRAINT redemptions_delivery_method_check,
    DROP CONSTRAINT redemptions_delivery_address_check,
    DROP CONSTRAINT redemptions_user_agent_check;

ALTER TABLE card_reveals
    ALTER COLUMN channel TYPE reveal_channel,
    ALTER COLUMN subject TYPE subject_text,
    ALTER COLUMN user_agent TYPE user_agent_text,
    DROP CONSTRAINT card_reveals_channel_check,
    DROP CONSTRAINT card_reveals_subject_check,
    DROP CONSTRAINT card_reveals_user_agent_check;

-- A session that ran a trigger function before this migration keeps its plans for NEW's columns as they were
-- typed then, and they fail on a domain ("type of parameter ... does not match that when preparing the plan").
-- Any change to a function's catalog row makes every session compile it again: these two read changed columns.
ALTER FUNCTION ledger_check_transfer() SET enable_seqscan = off;
ALTER FUNCTION redemptions_pause_if_depleted() SET enable_seqscan = off;

ALTER DOMAIN cents_positive ADD CONSTRAINT cents_positive CHECK (VALUE > 0);
ALTER DOMAIN cents_nonnegative ADD CONSTRAINT cents_nonnegative CHECK (VALUE >= 0);
ALTER DOMAIN count_nonnegative ADD CONSTRAINT count_nonnegative CHECK (VALUE >= 0);
ALTER DOMAIN last4 ADD CONSTRAINT last4 CHECK (length(VALUE) BETWEEN 1 AND 4);
ALTER DOMAIN account_owner_type ADD CONSTRAINT account_owner_type
    CHECK (VALUE IN ('platform', 'agency', 'client', 'campaign', 'system'));
ALTER DOMAIN transfer_kind ADD CONSTRAINT transfer_kind
    CHECK (VALUE IN ('allocation', 'reclaim', 'redemption', 'refund', 'reversal'));
ALTER DOMAIN card_source ADD CONSTRAINT card_source CHECK (VALUE IN ('csv', 'api'));
ALTER DOMAIN card_status ADD CONSTRAINT card_status CHECK (VALUE IN ('available', 'claimed'));
ALTER DOMAIN redemption_status ADD CONSTRAINT redemption_status CHECK (VALUE IN ('pending', 'fulfilled', 'failed'));
ALTER DOMAIN reveal_channel ADD CONSTRAINT reveal_channel CHECK (VALUE IN ('api', 'redeem_page', 'admin'));
ALTER DOMAIN vendor_name ADD CONSTRAINT vendor_name CHECK (length(VALUE) BETWEEN 1 AND 64);
ALTER DOMAIN vendor_reference ADD CONSTRAINT vendor_reference CHECK (length(VALUE) BETWEEN 1 AND 256);
ALTER DOMAIN note_text ADD CONSTRAINT note_text CHECK (length(VALUE) <= 500);
ALTER DOMAIN subject_text ADD CONSTRAINT subject_text CHECK (length(VALUE) <= 256);
ALTER DOMAIN user_agent_text ADD CONSTRAINT user_agent_text CHECK (length(VALUE) <= 512);
ALTER DOMAIN recipient_text ADD CONSTRAINT recipient_text CHECK (length(VALUE) <= 200);
ALTER DOMAIN delivery_method_text ADD CONSTRAINT delivery_method_text CHECK (length(VALUE) <= 50);
ALTER DOMAIN delivery_address_text ADD CONSTRAINT delivery_address_text CHECK (length(VALUE) <= 320);

-- The rules over several columns of a row.
CREATE FUNCTION credit_accounts_rules(a credit_accounts) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT ((a.owner_type = 'platform' AND a.owner_id IS NULL AND a.system_name IS NULL AND a.parent_id IS NULL)
            OR (a.owner_type = 'system' AND a.owner_id IS NULL AND a.system_name IS NOT NULL AND a.parent_id IS NULL)
            OR (a.owner_type IN ('agency', 'client', 'campaign') AND a.owner_id IS NOT NULL
                AND a.parent_id IS NOT NULL)) THEN
        RAISE EXCEPTION 'credit account % has the wrong owner columns for a % account', a.id, a.owner_type
            USING ERRCODE = 'check_violation', TABLE = 'credit_accounts', CONSTRAINT = 'credit_accounts_owner_shape';
    END IF;
    RETURN true;
END
$$;
ALTER TABLE credit_accounts
    DROP CONSTRAINT credit_accounts_owner_shape,
    ADD CONSTRAINT credit_accounts_rules CHECK (credit_accounts_rules(credit_accounts));

CREATE FUNCTION credit_transfers_rules(t credit_transfers) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF t.from_account_id = t.to_account_id THEN
        RAISE EXCEPTION 'transfer % moves credit from an account to itself', t.id
            USING ERRCODE = 'check_violation', TABLE = 'credit_transfers',
                  CONSTRAINT = 'credit_transfers_distinct_accounts';
    END IF;
    IF (t.kind IN ('refund', 'reversal')) <> (t.reverses_id IS NOT NULL) THEN
        RAISE EXCEPTION 'transfer % (%) must name the transfer it reverses exactly when it is a refund or reversal',
            t.id, t.kind
            USING ERRCODE = 'check_violation', TABLE = 'credit_transfers',
                  CONSTRAINT = 'credit_transfers_reversal_shape';
    END IF;
    RETURN true;
END
$$;
ALTER TABLE credit_transfers
    DROP CONSTRAINT credit_transfers_distinct_accounts,
    DROP CONSTRAINT credit_transfers_reversal_shape,
    ADD CONSTRAINT credit_transfers_rules CHECK (credit_transfers_rules(credit_transfers));

CREATE FUNCTION cards_rules(c cards) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF NOT ((c.source = 'csv' AND c.pool_id IS NOT NULL AND c.vendor IS NULL AND c.vendor_reference IS NULL)
            OR (c.source = 'api' AND c.pool_id IS NULL AND c.vendor IS NOT NULL AND c.status = 'claimed')) THEN
        RAISE EXCEPTION 'card % has the wrong pool or vendor columns for a % card', c.id, c.source
            USING ERRCODE = 'check_violation', TABLE = 'cards', CONSTRAINT = 'cards_source_shape';
    END IF;
    IF (c.status = 'claimed') <> (c.claimed_at IS NOT NULL) THEN
        RAISE EXCEPTION 'card % must have a claim time exactly when it is claimed', c.id
            USING ERRCODE = 'check_violation', TABLE = 'cards', CONSTRAINT = 'cards_claimed_at';
    END IF;
    RETURN true;
END
$$;
ALTER TABLE cards
    DROP CONSTRAINT cards_source_shape,
    DROP CONSTRAINT cards_claimed_at,
    ADD CONSTRAINT cards_rules CHECK (cards_rules(cards));

CREATE FUNCTION redemptions_rules(r redemptions) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    -- the vendor key is derived from the redemption id, so a retry can never use another key
    IF r.vendor_key IS NOT NULL AND r.vendor_key <> 'gc-' || replace(r.id::text, '-', '') THEN
        RAISE EXCEPTION 'redemption % has a vendor key not derived from its id', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_vendor_key_derived';
    END IF;
    IF (r.redemption_code_hash IS NULL) <> (r.retried_by IS NOT NULL) THEN
        RAISE EXCEPTION 'redemption % must hold its code unless a retry took it over', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_code_owned';
    END IF;
    IF r.retried_by IS NOT NULL AND r.status <> 'failed' THEN
        RAISE EXCEPTION 'redemption % was retried but has not failed', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_retry_of_failed';
    END IF;
    IF r.status = 'pending' AND NOT (r.card_id IS NULL AND r.refund_transfer_id IS NULL AND r.vendor_key IS NOT NULL
                                     AND r.next_attempt_at IS NOT NULL) THEN
        RAISE EXCEPTION 'pending redemption % has a card or a refund, or lacks its vendor key or next attempt', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_pending_shape';
    END IF;
    IF r.status = 'fulfilled' AND NOT (r.card_id IS NOT NULL AND r.source IS NOT NULL AND r.cost_basis_cents IS NOT NULL
                                       AND r.fulfilled_at IS NOT NULL AND r.refund_transfer_id IS NULL) THEN
        RAISE EXCEPTION 'fulfilled redemption % lacks its card, source, cost or time, or has a refund', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_fulfilled_shape';
    END IF;
    IF r.status = 'failed'
       AND NOT (r.refund_transfer_id IS NOT NULL AND r.failed_at IS NOT NULL AND r.card_id IS NULL) THEN
        RAISE EXCEPTION 'failed redemption % lacks its refund or time, or has a card', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_failed_shape';
    END IF;
    IF (r.source IS NOT NULL) <> (r.status = 'fulfilled') THEN
        RAISE EXCEPTION 'redemption % must have a source exactly when it is fulfilled', r.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_source_when_fulfilled';
    END IF;
    RETURN true;
END
$$;
ALTER TABLE redemptions
    DROP CONSTRAINT redemptions_vendor_key_derived,
    DROP CONSTRAINT redemptions_code_owned,
    DROP CONSTRAINT redemptions_retry_of_failed,
    DROP CONSTRAINT redemptions_pending_shape,
    DROP CONSTRAINT redemptions_fulfilled_shape,
    DROP CONSTRAINT redemptions_failed_shape,
    DROP CONSTRAINT redemptions_source_when_fulfilled,
    ADD CONSTRAINT redemptions_rules CHECK (redemptions_rules(redemptions));
