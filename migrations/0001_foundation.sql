-- Foundation: the hierarchy (agencies, clients, campaigns), brands and price lists, memberships,
-- credit accounts (balances; the ledger migration adds transfers and entries), alerts and audit events,
-- and the application role the functions use.

-- The application role: no superuser, no RLS bypass, only the grants below. Roles are cluster-wide,
-- so several databases on one server (tests) may race to create it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'giftcard_app') THEN
        CREATE ROLE giftcard_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
ALTER ROLE giftcard_app SET statement_timeout = '10s';
ALTER ROLE giftcard_app SET lock_timeout = '5s';
ALTER ROLE giftcard_app SET idle_in_transaction_session_timeout = '60s';

CREATE TABLE credit_accounts (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_type     text NOT NULL CHECK (owner_type IN ('platform', 'agency', 'client', 'campaign', 'system')),
    owner_id       uuid,
    system_name    text,
    parent_id      uuid REFERENCES credit_accounts (id),
    balance_cents  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_accounts_balance_nonnegative CHECK (owner_type = 'platform' OR balance_cents >= 0),
    CONSTRAINT credit_accounts_owner_shape CHECK (
        (owner_type = 'platform' AND owner_id IS NULL AND system_name IS NULL AND parent_id IS NULL)
        OR (owner_type = 'system' AND owner_id IS NULL AND system_name IS NOT NULL AND parent_id IS NULL)
        OR (owner_type IN ('agency', 'client', 'campaign') AND owner_id IS NOT NULL AND parent_id IS NOT NULL)
    )
);
CREATE UNIQUE INDEX credit_accounts_one_platform ON credit_accounts (owner_type) WHERE owner_type = 'platform';
CREATE UNIQUE INDEX credit_accounts_owner ON credit_accounts (owner_type, owner_id) WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX credit_accounts_system_name ON credit_accounts (system_name) WHERE system_name IS NOT NULL;
CREATE INDEX credit_accounts_parent ON credit_accounts (parent_id);

INSERT INTO credit_accounts (owner_type) VALUES ('platform');

CREATE TABLE agencies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    account_id  uuid NOT NULL UNIQUE REFERENCES credit_accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agencies_listing ON agencies (created_at, id);

CREATE TABLE clients (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    agency_id   uuid NOT NULL REFERENCES agencies (id),
    name        text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    account_id  uuid NOT NULL UNIQUE REFERENCES credit_accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX clients_listing ON clients (agency_id, created_at, id);

CREATE TABLE campaigns (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    client_id      uuid NOT NULL REFERENCES clients (id),
    name           text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'paused', 'ended')),
    -- why a campaign is paused: 'manual' (an admin) or 'depleted' (it could no longer pay for a card)
    paused_reason  text CHECK (paused_reason IN ('manual', 'depleted')),
    budget_mode    text NOT NULL CHECK (budget_mode IN ('shared', 'isolated')),
    account_id     uuid NOT NULL UNIQUE REFERENCES credit_accounts (id),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT campaigns_paused_reason CHECK ((status = 'paused') = (paused_reason IS NOT NULL))
);
CREATE INDEX campaigns_listing ON campaigns (client_id, created_at, id);
CREATE INDEX campaigns_active ON campaigns (status) WHERE status = 'active';

CREATE TABLE brands (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 200),
    denominations_cents  bigint[] NOT NULL CHECK (cardinality(denominations_cents) BETWEEN 1 AND 50
                                                   AND 0 < ALL (denominations_cents)),
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX brands_name_unique ON brands (lower(btrim(name)));
CREATE INDEX brands_listing ON brands (created_at, id);

-- Price list: what an agency pays and what a client is charged for one brand and denomination.
CREATE TABLE brand_prices (
    brand_id            uuid NOT NULL REFERENCES brands (id),
    denomination_cents  bigint NOT NULL CHECK (denomination_cents > 0),
    agency_price_cents  bigint CHECK (agency_price_cents > 0),
    client_price_cents  bigint CHECK (client_price_cents > 0),
    PRIMARY KEY (brand_id, denomination_cents)
);

CREATE TABLE memberships (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject     text NOT NULL CHECK (length(subject) BETWEEN 1 AND 256),
    role        text NOT NULL CHECK (role IN ('platform_admin', 'agency_admin', 'client_admin', 'client_integration')),
    agency_id   uuid REFERENCES agencies (id),
    client_id   uuid REFERENCES clients (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT memberships_scope CHECK (
        (role = 'platform_admin' AND agency_id IS NULL AND client_id IS NULL)
        OR (role = 'agency_admin' AND agency_id IS NOT NULL AND client_id IS NULL)
        OR (role IN ('client_admin', 'client_integration') AND client_id IS NOT NULL AND agency_id IS NULL)
    )
);
CREATE UNIQUE INDEX memberships_unique ON memberships (subject, role, agency_id, client_id) NULLS NOT DISTINCT;

-- Alerts: at most one unresolved alert per (type, entity). The monitor migration extends this table.
CREATE TABLE system_alerts (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type             text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    entity_type      text NOT NULL,
    entity_id        uuid,
    message          text NOT NULL,
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    occurrences      integer NOT NULL DEFAULT 1,
    details          jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen       timestamptz NOT NULL DEFAULT now(),
    last_seen        timestamptz NOT NULL DEFAULT now(),
    acknowledged_by  text,
    acknowledged_at  timestamptz,
    resolved_at      timestamptz
);
CREATE UNIQUE INDEX system_alerts_one_open ON system_alerts (type, entity_type, entity_id) NULLS NOT DISTINCT
    WHERE status <> 'resolved';
CREATE INDEX system_alerts_listing ON system_alerts (status, last_seen DESC, id);

-- Who did what: administrative actions, appended by the functions.
CREATE TABLE audit_events (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    entity_type  text NOT NULL,
    entity_id    uuid,
    details      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_entity ON audit_events (entity_type, entity_id, at);

GRANT USAGE ON SCHEMA public TO giftcard_app;
GRANT SELECT ON schema_migrations TO giftcard_app;
GRANT SELECT, INSERT, UPDATE ON credit_accounts, agencies, clients, campaigns, brands, system_alerts TO giftcard_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON brand_prices TO giftcard_app;
GRANT SELECT ON memberships TO giftcard_app;
GRANT SELECT, INSERT ON audit_events TO giftcard_app;
