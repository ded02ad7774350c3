-- Credit lots (each grant or top-up; consumed oldest first; expiring) and per-key spending
-- limits. Both are projections of the ledger maintained by triggers on ledger_entries, so every
-- posting path (usage, grants, Stripe top-ups, refunds, disputes, expiry) keeps them right.

-- Operator settings the triggers need; written by the server at start.
CREATE TABLE billing_settings (
    id                  BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    -- Days until a new lot expires; NULL = credits never expire.
    credit_expiry_days  INTEGER CHECK (credit_expiry_days IS NULL OR credit_expiry_days > 0)
);
INSERT INTO billing_settings (id, credit_expiry_days) VALUES (true, 365);

CREATE TABLE credit_lots (
    id              UUID PRIMARY KEY,
    account_id      UUID NOT NULL REFERENCES accounts(id),
    transaction_id  UUID NOT NULL REFERENCES ledger_transactions(id),
    source_kind     TEXT NOT NULL,
    amount          NUMERIC(38,12) NOT NULL CHECK (amount > 0),
    remaining       NUMERIC(38,12) NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    expires_at      TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX credit_lots_open_idx ON credit_lots (account_id, created_at, id) WHERE remaining > 0;
CREATE INDEX credit_lots_expiring_idx ON credit_lots (expires_at) WHERE remaining > 0 AND expires_at IS NOT NULL;

-- What each limited key spent in its current limit period.
CREATE TABLE api_key_usage (
    api_key_id    UUID NOT NULL REFERENCES api_keys(id),
    period_start  TIMESTAMPTZ NOT NULL,
    used          NUMERIC(38,12) NOT NULL DEFAULT 0,
    version       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (api_key_id, period_start)
);

-- Start of the limit period containing `at` (UTC); keys without a reset have one period.
CREATE FUNCTION infron_limit_period(reset TEXT, at TIMESTAMPTZ) RETURNS TIMESTAMPTZ
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE reset
        WHEN 'daily'   THEN date_trunc('day',   at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'weekly'  THEN date_trunc('week',  at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        WHEN 'monthly' THEN date_trunc('month', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
        ELSE TIMESTAMPTZ '1970-01-01 00:00:00+00'
    END
$$;

CREATE FUNCTION infron_project_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acct       UUID;
    book_kind  TEXT;
    t          RECORD;
    need       NUMERIC;
    lot        RECORD;
    take       NUMERIC;
    days       INTEGER;
    key_id     UUID;
    key_row    RECORD;
BEGIN
    SELECT account_id, kind INTO acct, book_kind FROM ledger_accounts WHERE id = NEW.ledger_account_id;
    IF book_kind IS DISTINCT FROM 'credits' THEN
        RETURN NULL;
    END IF;
    SELECT kind, metadata, effective_at INTO t FROM ledger_transactions WHERE id = NEW.transaction_id;

    IF NEW.amount < 0 THEN
        -- Money in: grants, top-ups and reinstated disputes each open a lot.
        IF t.kind IN ('grant', 'topup', 'dispute_reinstated') THEN
            SELECT credit_expiry_days INTO days FROM billing_settings;
            INSERT INTO credit_lots (id, account_id, transaction_id, source_kind, amount, remaining, expires_at, created_at)
            VALUES (gen_random_uuid(), acct, NEW.transaction_id, t.kind, -NEW.amount, -NEW.amount,
                    CASE WHEN days IS NULL THEN NULL ELSE t.effective_at + make_interval(days => days) END,
                    t.effective_at);
        END IF;
        RETURN NULL;
    END IF;

    -- Money out: an expiry empties its own lot; anything else consumes the oldest lots first.
    need := NEW.amount;
    IF t.kind = 'expiry' AND t.metadata ? 'lot_id' THEN
        UPDATE credit_lots SET remaining = remaining - least(remaining, need)
        WHERE id = (t.metadata->>'lot_id')::uuid;
    ELSE
        FOR lot IN SELECT id, remaining FROM credit_lots
                   WHERE account_id = acct AND remaining > 0
                   ORDER BY created_at, id FOR UPDATE LOOP
            take := least(lot.remaining, need);
            UPDATE credit_lots SET remaining = remaining - take WHERE id = lot.id;
            need := need - take;
            EXIT WHEN need = 0;
        END LOOP;
    END IF;

    -- Usage by a key with a limit counts against its current period.
    IF t.kind = 'usage' AND t.metadata ? 'api_key_id' AND jsonb_typeof(t.metadata->'api_key_id') = 'string' THEN
        key_id := (t.metadata->>'api_key_id')::uuid;
        SELECT credit_limit, limit_reset INTO key_row FROM api_keys WHERE id = key_id;
        IF FOUND AND key_row.credit_limit IS NOT NULL THEN
            INSERT INTO api_key_usage AS u (api_key_id, period_start, used, version)
            VALUES (key_id, infron_limit_period(key_row.limit_reset, t.effective_at), NEW.amount, 1)
            ON CONFLICT (api_key_id, period_start)
            DO UPDATE SET used = u.used + EXCLUDED.used, version = u.version + 1;
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_entries_project AFTER INSERT ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION infron_project_entry();
