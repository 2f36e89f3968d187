-- An alert whose severity rises asks for attention again: an acknowledged alert that gets worse is open once more.
-- The rule was written into each statement that refreshes an alert (the monitor's reconcile and raise_system_alert);
-- it now lives on the table, where every writer meets it, and those statements only say what they refresh.

CREATE FUNCTION system_alerts_reopen_when_worse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'acknowledged' THEN
        NEW.status := 'open';
    END IF;
    RETURN NEW;
END
$$;
REVOKE EXECUTE ON FUNCTION system_alerts_reopen_when_worse() FROM PUBLIC;

CREATE TRIGGER system_alerts_reopen_when_worse BEFORE UPDATE OF severity ON system_alerts FOR EACH ROW
    WHEN (alert_severity_rank(NEW.severity) > alert_severity_rank(OLD.severity))
    EXECUTE FUNCTION system_alerts_reopen_when_worse();

CREATE OR REPLACE FUNCTION raise_system_alert(
    p_type text, p_severity text, p_entity_type text, p_entity_id uuid, p_message text, p_details jsonb
) RETURNS TABLE (id text, created boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NOT gc_flag('entered') THEN
        RAISE EXCEPTION 'raise_system_alert: no scope entered' USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN QUERY
    INSERT INTO system_alerts AS a (type, severity, entity_type, entity_id, message, details)
    VALUES (p_type, p_severity, p_entity_type, p_entity_id, p_message, p_details)
    ON CONFLICT (type, entity_type, entity_id) WHERE status <> 'resolved' DO UPDATE
       SET severity = EXCLUDED.severity, message = EXCLUDED.message, details = EXCLUDED.details,
           occurrences = a.occurrences + 1, last_seen = now()
    RETURNING a.id::text, (a.xmax = 0);
END
$$;
