-- The monitor checks the ledger on every run (`ledger.check_recent`) at a cost that does not grow with its history:
-- every balance against its account's newest entry and the sum of the balances, then only the entries written since
-- the last run (each one's balance_after follows from the entry before it on its account; each of their transfers has
-- exactly its two entries). This row is where the check keeps its place.
--
-- checked_through: every entry with an id up to this one was checked, and no transaction can still add one there.
-- An entry id is drawn when the entry is written (in increasing order: the identity caches none), so a transaction
-- that commits late leaves an id below entries that committed before it: a watermark at the highest id seen would
-- pass over it. So the highest id a run checked becomes a candidate (candidate_through) with the snapshot's xmax
-- (candidate_xmax), and the watermark moves up to it only on a later run whose snapshot's xmin has passed that xmax:
-- every transaction that could hold an id below it has ended (the ledger writes a transfer's row before its entries,
-- so a transaction has its id before it draws an entry's), and that run has read the range again, late entries
-- included. A margin of time would not do: nothing bounds how long a transaction stays open, and the snapshot says
-- which ones are. A long transaction holds the watermark back; it never makes it pass an entry.
-- suspect_entries: entries found in violation, checked again on every run (wherever the watermark is) until they are
-- sound, so that the alert stays open until the ledger is repaired.
CREATE TABLE ledger_check_state (
    id                 boolean PRIMARY KEY DEFAULT true CHECK (id),
    checked_through    bigint NOT NULL DEFAULT 0,
    candidate_through  bigint,
    candidate_xmax     xid8,
    suspect_entries    bigint[] NOT NULL DEFAULT '{}',
    checked_at         timestamptz,
    CONSTRAINT ledger_check_state_candidate_shape CHECK (
        (candidate_through IS NULL) = (candidate_xmax IS NULL) AND candidate_through > checked_through)
);
INSERT INTO ledger_check_state (id) VALUES (true);

GRANT SELECT, UPDATE ON ledger_check_state TO giftcard_app;

-- The ledger's invariants on what changed (ledger.check recomputes them from every entry): each account's balance is
-- the balance after its newest entry (0 without entries), one index probe per account; the balances sum to zero;
-- each entry with an id in (p_after, p_through], and each suspect, follows from the entry before it on its account
-- (its balance_after is that entry's plus its amount), one probe each; each of their transfers has exactly its two
-- entries, -amount on the source and +amount on the destination. An account's entry ids grow with its history (its
-- row is locked while an entry is written), so an entry's predecessor is the one with the next lower id.
-- Nothing of the older history is read: every read of credit_entries and credit_transfers is by key (a range of ids,
-- or a LATERAL lookup per row), and sequential scans are disabled so that no plan made on small tables reads them
-- whole. A SQL function with settings is not inlined, and PostgreSQL 16 plans its statement at each call, for the
-- range it is given.
-- entry_id: the entry that breaks its chain; the account's newest entry; the transfer's first entry checked.
-- expected, found: cents, except for a transfer: how many of its entries match it (2 expected).
CREATE FUNCTION ledger_problems(p_after bigint, p_through bigint)
RETURNS TABLE (problem text, account_id uuid, transfer_id uuid, entry_id bigint, expected bigint, found bigint,
               owner_type text, owner text)
LANGUAGE sql STABLE SET enable_seqscan = off AS $$
WITH recent AS MATERIALIZED (
    SELECT id, transfer_id, account_id, amount_cents, balance_after_cents FROM credit_entries
     WHERE id > p_after AND id <= p_through
    UNION
    SELECT id, transfer_id, account_id, amount_cents, balance_after_cents FROM credit_entries
     WHERE id = ANY (CAST((SELECT suspect_entries FROM ledger_check_state WHERE id) AS bigint[]))
), found AS (
    SELECT 'balance_differs' AS problem, a.id AS account_id, NULL::uuid AS transfer_id, n.id AS entry_id,
           coalesce(n.balance_after_cents, 0) AS expected, a.balance_cents AS found
      FROM credit_accounts a
      LEFT JOIN LATERAL (SELECT e.id, e.balance_after_cents FROM credit_entries e
                          WHERE e.account_id = a.id ORDER BY e.id DESC LIMIT 1) n ON true
     WHERE a.balance_cents <> coalesce(n.balance_after_cents, 0)
    UNION ALL
    SELECT 'entry_chain_broken', r.account_id, r.transfer_id, r.id,
           coalesce(p.balance_after_cents, 0) + r.amount_cents, r.balance_after_cents
      FROM recent r
      LEFT JOIN LATERAL (SELECT e.balance_after_cents FROM credit_entries e
                          WHERE e.account_id = r.account_id AND e.id < r.id ORDER BY e.id DESC LIMIT 1) p ON true
     WHERE r.balance_after_cents <> coalesce(p.balance_after_cents, 0) + r.amount_cents
    UNION ALL
    SELECT 'transfer_unbalanced', NULL, n.transfer_id, n.entry_id, 2, s.matching
      FROM (SELECT transfer_id, min(id) AS entry_id FROM recent GROUP BY transfer_id) n
     CROSS JOIN LATERAL (
           SELECT count(*) AS entries, coalesce(sum(e.amount_cents), 0) AS total,
                  count(*) FILTER (WHERE (e.account_id, e.amount_cents) = (t.from_account_id, -t.amount_cents)
                                      OR (e.account_id, e.amount_cents) = (t.to_account_id, t.amount_cents)) AS matching
             FROM credit_entries e LEFT JOIN credit_transfers t ON t.id = n.transfer_id
            WHERE e.transfer_id = n.transfer_id) s
     WHERE s.entries <> 2 OR s.total <> 0 OR s.matching <> 2
    UNION ALL
    SELECT 'balances_sum_nonzero', NULL, NULL, NULL, 0, CAST(sum(balance_cents) AS bigint)
      FROM credit_accounts HAVING sum(balance_cents) <> 0
)
SELECT f.problem, f.account_id, f.transfer_id, f.entry_id, f.expected, f.found, a.owner_type,
       coalesce(CAST(a.owner_id AS text), a.system_name)
  FROM found f LEFT JOIN credit_accounts a ON a.id = f.account_id
$$;
REVOKE EXECUTE ON FUNCTION ledger_problems(bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_problems(bigint, bigint) TO giftcard_app;
