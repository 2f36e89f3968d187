-- Retention of redemption attempts: every attempt on the public /redeem writes a row (the rate limit's evidence and
-- the fraud review's), and nothing deleted them. The monitor now deletes those older than the retention period
-- (REDEEM_ATTEMPTS_RETENTION_DAYS, 90 days by default), a bounded batch per run, through prune_redemption_attempts.
--
-- The application role gets no DELETE on the table: the function runs as giftcard_retention, a role nobody logs in
-- as, which may only read and delete attempts, and it keeps every attempt younger than 7 days whatever it is asked,
-- so no caller of the application can erase recent evidence. The audit trail stays append-only for everyone else,
-- the owner included: the trigger lets only that role delete, and only attempts older than 7 days.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_retention') THEN
        CREATE ROLE giftcard_retention NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
-- The migrating role hands the function to the new role (as 0019 does for giftcard_ledger).
DO $$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        EXECUTE format('GRANT giftcard_retention TO %I', current_user);
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION redemption_attempts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_user = 'giftcard_retention' AND OLD.at < now() - interval '7 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'giftcards:append_only: redemption attempts are an audit trail and cannot be changed'
        USING ERRCODE = 'P0001';
END
$$;

GRANT USAGE ON SCHEMA public TO giftcard_retention;
GRANT SELECT, DELETE ON redemption_attempts TO giftcard_retention;
-- Row-level security (migration 0022) is forced on the table: the retention role's own policy lets it see and delete
-- what its function prunes.
CREATE POLICY redemption_attempts_retention ON redemption_attempts TO giftcard_retention USING (true);

CREATE FUNCTION prune_redemption_attempts(older_than interval, batch integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    deleted bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '7 days' THEN
        RAISE EXCEPTION 'redemption attempts are kept at least 7 days (asked to keep %)', older_than
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch IS NULL OR batch < 1 THEN
        RAISE EXCEPTION 'a batch is at least one attempt' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Oldest first, through redemption_attempts_listing (at DESC, id DESC) read backwards.
    DELETE FROM redemption_attempts
     WHERE id IN (SELECT id FROM redemption_attempts WHERE at < now() - older_than ORDER BY at, id LIMIT batch);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

ALTER FUNCTION prune_redemption_attempts(interval, integer) OWNER TO giftcard_retention;
ALTER FUNCTION prune_redemption_attempts(interval, integer) SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp;
REVOKE EXECUTE ON FUNCTION prune_redemption_attempts(interval, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION prune_redemption_attempts(interval, integer) TO giftcard_app;
