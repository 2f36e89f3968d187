-- ledger_transfer refuses with an error rather than answering NULLs: a transfer that names an unknown
-- account, or whose source holds too little, aborts the transaction. So a caller may send COMMIT in the
-- same round trip as the transfer (the hot account row is then unlocked one exchange sooner): after the
-- error the server skips that COMMIT, and nothing of the transaction is kept.
DROP FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid);

CREATE FUNCTION ledger_transfer(
    p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_reverses uuid,
    OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql AS $$
DECLARE
    found_accounts integer;
BEGIN
    -- Both rows locked in id order first: two transfers in opposite directions cannot deadlock.
    PERFORM 1 FROM credit_accounts WHERE id IN (p_from, p_to) ORDER BY id FOR NO KEY UPDATE;
    GET DIAGNOSTICS found_accounts = ROW_COUNT;
    IF found_accounts <> 2 THEN
        RAISE EXCEPTION 'transfer % names an account that does not exist', p_transfer_id
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'ledger_transfer_accounts_exist';
    END IF;
    -- The database, not the caller, decides whether the money is there.
    UPDATE credit_accounts SET balance_cents = balance_cents - p_amount
     WHERE id = p_from AND (owner_type = 'platform' OR balance_cents >= p_amount)
    RETURNING balance_cents INTO debit_balance_after;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'account % holds less than % cents', p_from, p_amount
            USING ERRCODE = 'check_violation', CONSTRAINT = 'credit_accounts_balance_nonnegative';
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
