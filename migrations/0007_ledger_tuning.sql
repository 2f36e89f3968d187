-- Ledger tuning.
--
-- Idempotency keys of credit movements are claimed by inserting the key's row first (a concurrent request
-- with the same key waits in its own INSERT ... ON CONFLICT until the first transaction ends) and the
-- answer is written over the placeholder once the movement is done, in the same transaction. The
-- application may change only that column.
GRANT UPDATE (response) ON idempotency_keys TO giftcard_app;

-- The movement of credit itself (`ledger.transfer_credit`), as one function: one round trip per transfer and
-- statement plans cached for the session instead of planned on every call. Both account rows are locked in
-- id order first, so two transfers in opposite directions cannot deadlock; the debit is conditional, so the
-- database, not the caller, decides whether the money is there. Always one row: `accounts_found` < 2 means
-- an account does not exist, a NULL `debit_entry_id` that the source holds too little; nothing is written
-- in either case. Runs with the caller's rights (SECURITY INVOKER).
CREATE FUNCTION ledger_transfer(
    p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_reverses uuid,
    OUT accounts_found integer, OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM credit_accounts WHERE id IN (p_from, p_to) ORDER BY id FOR NO KEY UPDATE;
    GET DIAGNOSTICS accounts_found = ROW_COUNT;
    IF accounts_found <> 2 THEN
        RETURN;
    END IF;
    UPDATE credit_accounts SET balance_cents = balance_cents - p_amount
     WHERE id = p_from AND (owner_type = 'platform' OR balance_cents >= p_amount)
    RETURNING balance_cents INTO debit_balance_after;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    UPDATE credit_accounts SET balance_cents = balance_cents + p_amount WHERE id = p_to
    RETURNING balance_cents INTO credit_balance_after;
    INSERT INTO credit_transfers (id, kind, from_account_id, to_account_id, amount_cents, initiator, notes, reverses_id)
    VALUES (p_transfer_id, p_kind, p_from, p_to, p_amount, p_initiator, p_notes, p_reverses)
    RETURNING created_at INTO transferred_at;
    INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
    VALUES (p_transfer_id, p_from, -p_amount, debit_balance_after)
    RETURNING id INTO debit_entry_id;
    INSERT INTO credit_entries (transfer_id, account_id, amount_cents, balance_after_cents)
    VALUES (p_transfer_id, p_to, p_amount, credit_balance_after)
    RETURNING id INTO credit_entry_id;
END
$$;
REVOKE EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) TO giftcard_app;
