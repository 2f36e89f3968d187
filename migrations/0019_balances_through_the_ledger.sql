-- Balances change only through the ledger; the application role may change only the columns its use cases change.
--
-- Before, giftcard_app held UPDATE on every column of credit_accounts, agencies, clients, campaigns, brands and
-- redemptions, and INSERT on the ledger's tables: a compromised function could add $1,000,000 to a client's
-- balance with no transfer, move a client under another agency, or turn a fulfilled redemption back and refund it.
--
-- - ledger_transfer runs with the rights of giftcard_ledger, a role nobody logs in as, which alone may write
--   transfers and entries and update balances. SECURITY DEFINER with search_path pinned (pg_temp last, so that no
--   temporary table of the caller's can stand in for one of the ledger's); EXECUTE only for giftcard_app.
-- - credit_accounts: the application role inserts accounts for new agencies, clients and campaigns (their balance
--   starts at 0: no INSERT on balance_cents) and updates no column. PostgreSQL asks for UPDATE privilege on some
--   column before a role may lock a table's rows (FOR SHARE, FOR UPDATE), and the application locks accounts to
--   read a balance that must not move under a decision (switching a budget mode, pausing a depleted campaign): it
--   holds UPDATE on created_at for that alone. The trigger credit_accounts_written_by_the_ledger_only refuses every
--   change of an account row but a balance changed by giftcard_ledger.
-- - agencies, clients, brands: no UPDATE (nothing updates them); campaigns: status, paused_reason, budget_mode,
--   updated_at; redemptions: the columns of its state changes, never its charge, payer, campaign or amounts.
-- - The redemption state machine, by trigger: pending -> pending, fulfilled or failed; a fulfilled redemption's
--   status, card, source, cost and refund never change; a failed one stays failed and keeps its refund, giving its
--   code up to a retry at most. The charge, payer, campaign, client, brand and amounts never change.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_ledger') THEN
        CREATE ROLE giftcard_ledger NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- The role that migrates must be able to act as the new owner to hand it the function (a superuser always can; on
-- RDS the master user created the role, so it may grant it to itself).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT giftcard_ledger TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO giftcard_ledger;
GRANT SELECT, UPDATE (balance_cents) ON credit_accounts TO giftcard_ledger;
GRANT SELECT, INSERT ON credit_transfers, credit_entries TO giftcard_ledger;

ALTER FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid)
    OWNER TO giftcard_ledger;
ALTER FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid)
    SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_transfer(uuid, text, uuid, uuid, bigint, text, text, uuid) TO giftcard_app;

REVOKE INSERT ON credit_transfers, credit_entries FROM giftcard_app;
REVOKE INSERT, UPDATE ON credit_accounts FROM giftcard_app;
GRANT INSERT (owner_type, owner_id, parent_id) ON credit_accounts TO giftcard_app;
GRANT UPDATE (created_at) ON credit_accounts TO giftcard_app;

CREATE FUNCTION credit_accounts_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'credit account %: only its balance changes, and only through ledger_transfer', OLD.id
        USING ERRCODE = 'insufficient_privilege', TABLE = 'credit_accounts';
END
$$;
CREATE TRIGGER credit_accounts_written_by_the_ledger_only BEFORE UPDATE ON credit_accounts FOR EACH ROW
    WHEN (current_user <> 'giftcard_ledger'
          OR (NEW.id, NEW.owner_type, NEW.owner_id, NEW.system_name, NEW.parent_id, NEW.created_at)
             IS DISTINCT FROM (OLD.id, OLD.owner_type, OLD.owner_id, OLD.system_name, OLD.parent_id, OLD.created_at))
    EXECUTE FUNCTION credit_accounts_refuse_change();

REVOKE UPDATE ON agencies, clients, brands FROM giftcard_app;
REVOKE UPDATE ON campaigns FROM giftcard_app;
GRANT UPDATE (status, paused_reason, budget_mode, updated_at) ON campaigns TO giftcard_app;

REVOKE UPDATE ON redemptions FROM giftcard_app;
GRANT UPDATE (status, source, card_id, cost_basis_cents, vendor, vendor_attempts, last_vendor_error, next_attempt_at,
              lease_token, fulfilled_at, failed_at, refund_transfer_id, redemption_code_hash, retried_by,
              campaign_paused, updated_at)
    ON redemptions TO giftcard_app;

CREATE FUNCTION redemptions_state_machine() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.campaign_id, NEW.client_id, NEW.brand_id, NEW.denomination_cents, NEW.paying_account_id,
        NEW.charge_transfer_id, NEW.amount_charged_cents, NEW.agency_price_cents, NEW.vendor_key, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.campaign_id, OLD.client_id, OLD.brand_id, OLD.denomination_cents, OLD.paying_account_id,
        OLD.charge_transfer_id, OLD.amount_charged_cents, OLD.agency_price_cents, OLD.vendor_key, OLD.created_at) THEN
        RAISE EXCEPTION 'redemption %: its charge, payer, campaign and amounts never change', OLD.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_state_machine';
    END IF;
    IF OLD.status = 'fulfilled'
       AND (NEW.status, NEW.card_id, NEW.source, NEW.cost_basis_cents, NEW.fulfilled_at, NEW.refund_transfer_id)
           IS DISTINCT FROM
           (OLD.status, OLD.card_id, OLD.source, OLD.cost_basis_cents, OLD.fulfilled_at, OLD.refund_transfer_id) THEN
        RAISE EXCEPTION 'redemption % is fulfilled: its card, charge and status never change', OLD.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_state_machine';
    END IF;
    IF OLD.status = 'failed'
       AND (NEW.status <> 'failed' OR NEW.refund_transfer_id IS DISTINCT FROM OLD.refund_transfer_id
            OR NEW.card_id IS NOT NULL OR NEW.failed_at IS DISTINCT FROM OLD.failed_at
            OR (OLD.retried_by IS NOT NULL AND NEW.retried_by IS DISTINCT FROM OLD.retried_by)) THEN
        RAISE EXCEPTION 'redemption % failed and was refunded: it stays so, giving its code up to a retry at most',
            OLD.id
            USING ERRCODE = 'check_violation', TABLE = 'redemptions', CONSTRAINT = 'redemptions_state_machine';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER redemptions_state_machine BEFORE UPDATE ON redemptions FOR EACH ROW
    EXECUTE FUNCTION redemptions_state_machine();
