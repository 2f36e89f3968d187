-- A redemption code that a caller supplies (an integration's own `ORDER-1001`) is unique within its client, not
-- across tenants: two clients may both use it, each getting its own card and charge, and neither learns that the
-- other has. Until now the code's keyed hash was unique over all redemptions, so client B's first use of a code
-- client A had used was refused (409 redemption_code_conflict), which also told B that A had used it.
--
-- The constraint keeps its name: provisioning maps a violation of redemptions_code_hash_key to "another request
-- took this code first, replay it", and provision_card (0018) raises it by that name when a concurrent retry took
-- a failed redemption's code over. Its columns, the hash first: provisioning finds a code's redemption by the
-- hash it was given and the campaign's client; the planner takes the hash as the index condition and the client,
-- which comes from the joined campaign, as a filter on the row or rows found (PostgreSQL 16 cannot skip over a
-- leading column, so with the client first it would read the whole index). An INSERT checks its uniqueness by
-- the same single descent. Each redemption's client is its campaign's client (provision_card writes them
-- together), so the code stays the idempotency key within a client, across its campaigns as before.
--
-- Codes this system issues (redemption_codes.code_hash) are not touched: they stay unique across the platform,
-- and the public redeem page finds them by the hash alone.

ALTER TABLE redemptions
    DROP CONSTRAINT redemptions_code_hash_key,
    ADD CONSTRAINT redemptions_code_hash_key UNIQUE (redemption_code_hash, client_id);
