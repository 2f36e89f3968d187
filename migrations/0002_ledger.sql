-- The double-entry ledger: every movement of credit is one transfer with exactly two entries (one
-- negative, one positive, summing to zero). Entries and transfers are append-only; corrections are new
-- reversing transfers. Balances on credit_accounts are a cache written in the same transaction.

INSERT INTO credit_accounts (owner_type, system_name) VALUES ('system', 'spend');

CREATE TABLE credit_transfers (
    id               uuid PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('allocation', 'reclaim', 'redemption', 'refund', 'reversal')),
    from_account_id  uuid NOT NULL REFERENCES credit_accounts (id),
    to_account_id    uuid NOT NULL REFERENCES credit_accounts (id),
    amount_cents     bigint NOT NULL CHECK (amount_cents > 0),
    initiator        text NOT NULL,
    notes            text CHECK (length(notes) <= 500),
    reverses_id      uuid REFERENCES credit_transfers (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT credit_transfers_distinct_accounts CHECK (from_account_id <> to_account_id),
    CONSTRAINT credit_transfers_reversal_shape CHECK ((kind IN ('refund', 'reversal')) = (reverses_id IS NOT NULL))
);
-- A transfer is reversed at most once.
CREATE UNIQUE INDEX credit_transfers_reversed_once ON credit_transfers (reverses_id) WHERE reverses_id IS NOT NULL;

CREATE TABLE credit_entries (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transfer_id          uuid NOT NULL REFERENCES credit_transfers (id),
    account_id           uuid NOT NULL REFERENCES credit_accounts (id),
    amount_cents         bigint NOT NULL CHECK (amount_cents <> 0),
    balance_after_cents  bigint NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_entries_transfer ON credit_entries (transfer_id);
CREATE INDEX credit_entries_account_history ON credit_entries (account_id, id DESC);

-- Idempotency keys of credit movements requested over HTTP: claimed in the same transaction as the
-- movement, so a key is either unused or bound to exactly one committed answer.
CREATE TABLE idempotency_keys (
    scope         text NOT NULL,
    key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash  text NOT NULL,
    response      jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

-- Append-only: no UPDATE, DELETE or TRUNCATE of ledger rows, whoever asks.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'giftcards:append_only: % rows are append-only; write a reversing transfer instead', TG_TABLE_NAME
        USING ERRCODE = 'P0001';
END
$$;
CREATE TRIGGER credit_entries_append_only BEFORE UPDATE OR DELETE ON credit_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER credit_entries_no_truncate BEFORE TRUNCATE ON credit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER credit_transfers_append_only BEFORE UPDATE OR DELETE ON credit_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER credit_transfers_no_truncate BEFORE TRUNCATE ON credit_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Balanced: at commit, every transfer touched has exactly its two entries: -amount on the source and
-- +amount on the destination. Checked when the transfer is written and again when any entry is added.
CREATE FUNCTION ledger_check_transfer() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    tid uuid;
    t credit_transfers%ROWTYPE;
    matching integer;
    total integer;
BEGIN
    IF TG_TABLE_NAME = 'credit_transfers' THEN
        tid := NEW.id;
    ELSE
        tid := NEW.transfer_id;
    END IF;
    SELECT * INTO t FROM credit_transfers WHERE id = tid;
    SELECT count(*),
           count(*) FILTER (WHERE (account_id = t.from_account_id AND amount_cents = -t.amount_cents)
                               OR (account_id = t.to_account_id AND amount_cents = t.amount_cents))
      INTO total, matching
      FROM credit_entries WHERE transfer_id = tid;
    IF total <> 2 OR matching <> 2 THEN
        RAISE EXCEPTION 'transfer % must have exactly two entries summing to zero (has %)', tid, total
            USING ERRCODE = '23514', CONSTRAINT = 'credit_transfers_balanced';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER credit_transfers_balanced AFTER INSERT ON credit_transfers
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer();
CREATE CONSTRAINT TRIGGER credit_entries_balanced AFTER INSERT ON credit_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transfer();

GRANT SELECT, INSERT ON credit_transfers, credit_entries TO giftcard_app;
GRANT SELECT, INSERT ON idempotency_keys TO giftcard_app;
