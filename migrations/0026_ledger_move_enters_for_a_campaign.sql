-- A credit movement enters its caller's scope only when it reads a campaign (a movement into a campaign's account,
-- whose budget mode it checks). Otherwise it reads no tenant's row as the application role: the transfer runs as
-- giftcard_ledger (ledger_transfer) and is checked at commit as that role too, so entering a scope (a tenth of a
-- movement's database time in the allocation benchmark) bought nothing.
CREATE OR REPLACE FUNCTION ledger_move(
    p_scope text, p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_into_campaign uuid,
    OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('enable_seqscan', 'off', true);
    IF p_into_campaign IS NOT NULL THEN
        IF p_scope IS NOT NULL THEN
            PERFORM gc_enter(p_scope);
        END IF;
        IF (SELECT budget_mode FROM campaigns WHERE id = p_into_campaign FOR SHARE) IS DISTINCT FROM 'isolated' THEN
            RAISE EXCEPTION 'giftcards:invalid_hierarchy: This campaign draws on its client''s shared budget; switch it to isolated before allocating to it.';
        END IF;
    END IF;
    SELECT t.debit_entry_id, t.debit_balance_after, t.credit_entry_id, t.credit_balance_after, t.transferred_at
      INTO debit_entry_id, debit_balance_after, credit_entry_id, credit_balance_after, transferred_at
      FROM ledger_transfer(p_transfer_id, p_kind, p_from, p_to, p_amount, p_initiator, p_notes, NULL) AS t;
END
$$;
