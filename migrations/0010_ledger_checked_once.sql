-- Each transfer is checked for balance once, at commit, instead of once more for each of its two entries.
--
-- A transfer holds at most one negative and one positive entry (the unique index below), and at the commit of
-- the transaction that wrote it, exactly its two: -amount on the source, +amount on the destination (the
-- transfer's deferred trigger). Once committed, both places are taken, so no entry can ever be added to it, and
-- entries are never updated or deleted (0002). That leaves nothing for a check on each entry to find: it ran
-- the same two lookups as the transfer's own check, twice more per transfer, at commit, while the transaction
-- still held the source account's row.
--
-- The unique index leads with transfer_id, so it also serves every lookup of a transfer's entries in place of
-- credit_entries_transfer.

CREATE UNIQUE INDEX credit_entries_one_per_side ON credit_entries (transfer_id, (amount_cents > 0));
DROP INDEX credit_entries_transfer;

DROP TRIGGER credit_entries_balanced ON credit_entries;

-- Only transfers fire it now: the new row is the transfer itself.
CREATE OR REPLACE FUNCTION ledger_check_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    matching integer;
    total integer;
BEGIN
    SELECT count(*),
           count(*) FILTER (WHERE (account_id = NEW.from_account_id AND amount_cents = -NEW.amount_cents)
                               OR (account_id = NEW.to_account_id AND amount_cents = NEW.amount_cents))
      INTO total, matching
      FROM credit_entries WHERE transfer_id = NEW.id;
    IF total <> 2 OR matching <> 2 THEN
        RAISE EXCEPTION 'transfer % must have exactly two entries summing to zero (has %)', NEW.id, total
            USING ERRCODE = '23514', CONSTRAINT = 'credit_transfers_balanced';
    END IF;
    RETURN NULL;
END
$$;
