-- The monitor: alert notification bookkeeping (an outbox on system_alerts), low-balance thresholds per entity,
-- the single-row lease that lets exactly one monitor run at a time, and the indexes its checks and listings use.

-- Severities in order, for "did this alert get worse than what was last announced".
CREATE FUNCTION alert_severity_rank(severity text) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_position(ARRAY['info', 'warning', 'critical'], severity);

-- What was last published to the alerts topic for each alert. An alert needs publishing when it is open and was
-- never announced, open and worse than the highest severity announced, or resolved and not yet announced as
-- resolved. Publishing happens after the alert's transaction committed; the columns are set once the topic took
-- the message, so a crash in between publishes it again on the next run (at least once, never lost).
-- notify_claimed_until: a publisher took the alert and is sending it; others leave it alone until then.
ALTER TABLE system_alerts
    ADD COLUMN notified_status       text CHECK (notified_status IN ('open', 'resolved')),
    ADD COLUMN notified_severity     text CHECK (notified_severity IN ('info', 'warning', 'critical')),
    ADD COLUMN notified_at           timestamptz,
    ADD COLUMN notify_claimed_until  timestamptz,
    ADD CONSTRAINT system_alerts_notified_shape CHECK (
        (notified_status IS NULL) = (notified_severity IS NULL) AND (notified_status IS NULL) = (notified_at IS NULL)),
    ADD CONSTRAINT system_alerts_resolved_shape CHECK ((status = 'resolved') = (resolved_at IS NOT NULL)),
    ADD CONSTRAINT system_alerts_acknowledged_shape CHECK ((acknowledged_by IS NULL) = (acknowledged_at IS NULL)),
    ADD CONSTRAINT system_alerts_occurrences_positive CHECK (occurrences >= 1);

-- The outbox: alerts waiting to be published (a handful at any time, however many alerts exist).
CREATE INDEX system_alerts_unnotified ON system_alerts (last_seen) WHERE
    (status <> 'resolved' AND (notified_status IS NULL
                               OR alert_severity_rank(severity) > alert_severity_rank(notified_severity)))
    OR (status = 'resolved' AND notified_status IS DISTINCT FROM 'resolved');
-- GET /alerts: open (and acknowledged) alerts newest first, resolved ones by when they were resolved.
CREATE INDEX system_alerts_open_listing ON system_alerts (first_seen DESC, id DESC) WHERE status <> 'resolved';
CREATE INDEX system_alerts_resolved_listing ON system_alerts (resolved_at DESC, id DESC) WHERE status = 'resolved';
DROP INDEX system_alerts_listing;

-- Low-balance thresholds: a row with entity_id NULL is the default for its entity type; a row naming an entity
-- overrides it for that agency, client or (isolated) campaign. Defaults from the seed: agency $1,000, client $500,
-- isolated campaign $100. A balance below its threshold raises an alert (agency/client warning, campaign info).
CREATE TABLE alert_thresholds (
    entity_type        text NOT NULL CHECK (entity_type IN ('agency', 'client', 'campaign')),
    entity_id          uuid,
    low_balance_cents  bigint NOT NULL CHECK (low_balance_cents >= 0),
    updated_by         text NOT NULL CHECK (length(updated_by) BETWEEN 1 AND 256),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_thresholds_one_per_entity UNIQUE NULLS NOT DISTINCT (entity_type, entity_id)
);
INSERT INTO alert_thresholds (entity_type, entity_id, low_balance_cents, updated_by) VALUES
    ('agency', NULL, 100000, 'migration'),
    ('client', NULL, 50000, 'migration'),
    ('campaign', NULL, 10000, 'migration');

-- The defaults must exist: the checks read them.
CREATE FUNCTION alert_thresholds_keep_defaults() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.entity_id IS NULL AND (TG_OP = 'DELETE' OR NEW.entity_id IS NOT NULL OR NEW.entity_type <> OLD.entity_type)
    THEN
        RAISE EXCEPTION 'giftcards:default_threshold: the default % threshold can be changed but not removed',
            OLD.entity_type USING ERRCODE = 'P0001';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER alert_thresholds_keep_defaults BEFORE UPDATE OR DELETE ON alert_thresholds
    FOR EACH ROW EXECUTE FUNCTION alert_thresholds_keep_defaults();

-- One monitor run at a time. A run takes the lease with a conditional UPDATE of this one row (a second run finds it
-- taken and answers "skipped"), holds it across its transactions and the vendor retries, and gives it back at
-- the end. A run that died keeps it only until lease_until; the next run then takes it over.
CREATE TABLE monitor_state (
    id                boolean PRIMARY KEY DEFAULT true CHECK (id),
    run_token         uuid,
    run_trigger       text CHECK (run_trigger IN ('schedule', 'http', 'cli')),
    lease_until       timestamptz,
    run_started_at    timestamptz,
    last_finished_at  timestamptz,
    last_result       jsonb,
    CONSTRAINT monitor_state_lease_shape CHECK (
        (run_token IS NULL) = (lease_until IS NULL) AND (run_token IS NULL) = (run_trigger IS NULL))
);
INSERT INTO monitor_state (id) VALUES (true);

GRANT SELECT, INSERT, UPDATE, DELETE ON alert_thresholds TO giftcard_app;
GRANT SELECT, UPDATE ON monitor_state TO giftcard_app;
GRANT EXECUTE ON FUNCTION alert_severity_rank(text) TO giftcard_app;
