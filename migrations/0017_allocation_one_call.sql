-- A credit movement along the hierarchy is one database call: with pg8000's public API each statement is a round
-- trip, and BEGIN and COMMIT would be two more. The caller authorizes first (a read); this moves the credit in a
-- transaction of its own, which the server commits when the statement ends.
--
-- ledger_transfer (0011), after the rule that only an isolated campaign holds credit, for credit moved into a
-- campaign's account: the campaign's row is share-locked while its budget mode is read, so a switch to shared
-- (which locks it for update, ledger.switch_budget_mode) either committed before and is seen here, or waits until
-- this movement has committed and then returns the credit to the client.
CREATE FUNCTION ledger_move(
    p_transfer_id uuid, p_kind text, p_from uuid, p_to uuid, p_amount bigint, p_initiator text, p_notes text,
    p_into_campaign uuid,
    OUT debit_entry_id bigint, OUT debit_balance_after bigint,
    OUT credit_entry_id bigint, OUT credit_balance_after bigint, OUT transferred_at timestamptz
) LANGUAGE plpgsql SET enable_seqscan = off AS $$
BEGIN
    IF p_into_campaign IS NOT NULL
       AND (SELECT budget_mode FROM campaigns WHERE id = p_into_campaign FOR SHARE) IS DISTINCT FROM 'isolated' THEN
        RAISE EXCEPTION 'giftcards:invalid_hierarchy: This campaign draws on its client''s shared budget; switch it to isolated before allocating to it.';
    END IF;
    SELECT t.debit_entry_id, t.debit_balance_after, t.credit_entry_id, t.credit_balance_after, t.transferred_at
      INTO debit_entry_id, debit_balance_after, credit_entry_id, credit_balance_after, transferred_at
      FROM ledger_transfer(p_transfer_id, p_kind, p_from, p_to, p_amount, p_initiator, p_notes, NULL) AS t;
END
$$;
