-- Redemptions are credited to one of 32 spend accounts instead of a single one.
--
-- Every redemption's transfer locks its paying account and a spend account until its commit is on disk. With one
-- spend account, that row was hot for the whole platform: every redemption of every budget queued for it, one at
-- a time. Each redemption now picks one of 32 at random (`ledger.spend_account_name`); refunds reverse the charge,
-- so they come back out of the same one. Together they are what was spent; each balances like any account.
-- The first keeps its name, 'spend'; the others are 'spend:1' to 'spend:31'.

INSERT INTO credit_accounts (owner_type, system_name)
SELECT 'system', 'spend:' || n FROM generate_series(1, 31) AS n;
