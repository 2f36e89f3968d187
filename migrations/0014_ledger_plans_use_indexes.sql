-- The functions on the provisioning and allocation path find every row they read or write by its key, and plan
-- their statements with sequential scans disabled.
--
-- A function's statements are planned once per session and the plan kept. When the tables were small at the last
-- ANALYZE (a new deployment, a quiet budget), the planner judged reading the whole table cheaper than its index,
-- and kept reading the whole table as it grew: credit_accounts in particular, a few pages whose hot rows leave
-- dead versions behind at every update, was scanned through all of them by every transfer, several times, while
-- the transfer held a budget's row. With sequential scans disabled the same statements use the indexes they were
-- written for, however small the tables looked when they were planned.

ALTER FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) SET enable_seqscan = off;
ALTER FUNCTION ledger_check_transfer() SET enable_seqscan = off;
ALTER FUNCTION redemptions_pause_if_depleted() SET enable_seqscan = off;
