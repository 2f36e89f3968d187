-- A signed-in caller's code of this system's shape is looked up before it is provisioned: an issued code is checked
-- against the campaign, brand and denomination it was issued for. That lookup was a transaction of its own, three
-- exchanges (BEGIN READ ONLY entering the caller's scope, the read, COMMIT) before the one call of the warm path.
-- Entering the scope and reading are now one statement, with no transaction left open: the code's row as the
-- caller's scope shows it (row-level security, migration 0022), or none.
CREATE FUNCTION find_redemption_code(p_scope text, p_code_hash bytea)
RETURNS TABLE (id text, campaign_id text, brand_id text, denomination_cents bigint, status text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
    PERFORM gc_enter(p_scope);
    RETURN QUERY
    SELECT c.id::text, c.campaign_id::text, c.brand_id::text, c.denomination_cents::bigint, c.status::text
      FROM redemption_codes c
     WHERE c.code_hash = p_code_hash;
END
$$;
