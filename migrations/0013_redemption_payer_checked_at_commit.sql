-- A redemption's reference to its paying account is checked at commit, like its reference to its charge (0009).
--
-- The check locks the referenced row FOR KEY SHARE. Made when the redemption is written, before its charge, it
-- met the paying account's row while another provision on the same budget held it for its own charge: the two
-- locks then had to be recorded together as a multixact on the row, for every provision, and every later read of
-- that row's versions had to look the multixact up. At commit, this transaction holds the row itself (its charge
-- locked it), so the check waits for nobody and records nothing new.

ALTER TABLE redemptions ALTER CONSTRAINT redemptions_paying_account_id_fkey DEFERRABLE INITIALLY DEFERRED;
