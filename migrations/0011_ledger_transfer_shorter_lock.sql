-- ledger_transfer holds the busiest of its two account rows for as short a time as it can.
--
-- A budget's account is a hot row: every allocation or redemption it pays for locks it, and holds it until its
-- commit is on disk, so they run one at a time, and the time each holds the row bounds how many run per second.
-- The rows are still locked in one fixed order, so two transfers never wait for each other in a cycle (no
-- deadlocks, in whichever directions they move), but the order now puts the likelier hot row last: system
-- accounts, then campaigns, clients, agencies and the platform (children before parents, ties by id). Whatever
-- can be done before that row is locked is:
-- - the accounts are looked up (unlocked) and the transfer row is written first; its foreign keys are checked
--   at commit, when both rows are locked by this transaction (so the checks wait for nobody);
-- - the first account's row is updated and its entry written, then the second's.
-- A credit cannot fail; a debit is still conditional (the database decides whether the money is there), and a
-- refused transfer still raises, so nothing of it is kept.

ALTER TABLE credit_transfers
    ALTER CONSTRAINT credit_transfers_from_account_id_fkey DEFERRABLE INITIALLY DEFERRED,
    ALTER CONSTRAINT credit_transfers_to_account_id_fkey DEFERRABLE INITIALLY DEFERRED;

-- An entry's account is one of its transfer's two accounts (checked at commit by credit_transfers_balanced), and
-- those are foreign keys of the transfer: this check repeated theirs on a row this transaction had just locked.
ALTER TABLE credit_entries DROP CONSTRAINT credit_entries_account_id_fkey;

-- The position of an account in the order rows are locked in: lower first.
CREATE FUNCTION ledger_lock_rank(p_owner_type text) RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE p_owner_type
        WHEN 'system' THEN 0 WHEN 'campaign' THEN 1 WHEN 'client' THEN 2 WHEN 'agency' THEN 3 ELSE 4
    END
$$;

DROP FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid);

CREATE FUNCTION ledger_transfer(
    p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_reverses uuid,
    OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    found_accounts integer;
    from_rank integer;
    to_rank integer;
BEGIN
    SELECT count(*), min(ledger_lock_rank(owner_type)) FILTER (WHERE id = p_from),
           min(ledger_lock_rank(owner_type)) FILTER (WHERE id = p_to)
      INTO found_accounts, from_rank, to_rank
      FROM credit_accounts WHERE id IN (p_from, p_to);
    IF found_accounts <> 2 THEN
        RAISE EXCEPTION 'transfer % names an account that does not exist', p_transfer_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_transfer_accounts_exist';
    END IF;
    INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator, notes, reverses_id)
    VALUES (p_transfer_id, p_kind, p_from, p_to, p_amount, p_initiator, p_notes, p_reverses)
    RETURNING created_at INTO transferred_at;
    IF (to_rank, p_to) < (from_rank, p_from) THEN
        UPDATE credit_accounts SET balance_cents = balance_cents + p_amount WHERE id = p_to
        RETURNING balance_cents INTO credit_balance_after;
        INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
        VALUES (p_transfer_id, p_to, p_amount, credit_balance_after)
        RETURNING id INTO credit_entry_id;
    END IF;
    -- The database, not the caller, decides whether the money is there.
    UPDATE credit_accounts SET balance_cents = balance_cents - p_amount
     WHERE id = p_from AND (owner_type = 'platform' OR balance_cents >= p_amount)
    RETURNING balance_cents INTO debit_balance_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % holds less than % cents', p_from, p_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_accounts_balance_nonnegative';
    END IF;
    INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
    VALUES (p_transfer_id, p_from, -p_amount, debit_balance_after)
    RETURNING id INTO debit_entry_id;
    IF credit_entry_id IS NULL THEN
        UPDATE credit_accounts SET balance_cents = balance_cents + p_amount WHERE id = p_to
        RETURNING balance_cents INTO credit_balance_after;
        INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
        VALUES (p_transfer_id, p_to, p_amount, credit_balance_after)
        RETURNING id INTO credit_entry_id;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) TO giftcard_app;
