-- Infron core schema: tenants, API keys, double-entry ledger, request logs.
-- Money is NUMERIC(38,12): USD with 12 decimal places (one pico-dollar), the scale at
-- which every per-token price in the catalog times an integer token count is exact.

CREATE TABLE accounts (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- Privacy routing: endpoints whose provider trains on prompts are skipped unless true.
    allow_training  BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            UUID PRIMARY KEY,
    account_id    UUID NOT NULL REFERENCES accounts(id),
    name          TEXT NOT NULL DEFAULT '',
    -- HMAC-SHA-256 of the full secret under the server's key-hashing secret. The secret itself is never stored.
    key_hash      BYTEA NOT NULL UNIQUE,
    -- What a person may see to recognise the key: prefix and last four characters.
    key_hint      TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT false,
    credit_limit  NUMERIC(38,12) CHECK (credit_limit IS NULL OR credit_limit >= 0),
    limit_reset   TEXT CHECK (limit_reset IN ('daily', 'weekly', 'monthly')),
    expires_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_account_idx ON api_keys (account_id);

-- Ledger accounts: one row per book. Tenants own a `credits` book (what the platform owes them);
-- the platform owns stripe_clearing, usage_revenue, topup_fee_revenue, expired_credits, grants.
CREATE TABLE ledger_accounts (
    id           UUID PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,
    kind         TEXT NOT NULL CHECK (kind IN ('credits', 'stripe_clearing', 'usage_revenue',
                                               'topup_fee_revenue', 'expired_credits', 'grants')),
    account_id   UUID REFERENCES accounts(id),
    -- Entries are signed: positive = debit, negative = credit. `balance` is kept on the
    -- account's normal side, so a tenant's credits book shows a positive balance.
    normal_side  TEXT NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    balance      NUMERIC(38,12) NOT NULL DEFAULT 0,
    -- Incremented by every posting; lets caches order absolute balance updates.
    version      BIGINT NOT NULL DEFAULT 0,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'credits') = (account_id IS NOT NULL))
);
CREATE UNIQUE INDEX ledger_accounts_tenant_kind ON ledger_accounts (account_id, kind) WHERE account_id IS NOT NULL;

INSERT INTO ledger_accounts (id, code, kind, normal_side) VALUES
    ('00000000-0000-0000-0000-000000000001', 'platform:stripe_clearing',  'stripe_clearing',   'debit'),
    ('00000000-0000-0000-0000-000000000002', 'platform:usage_revenue',    'usage_revenue',     'credit'),
    ('00000000-0000-0000-0000-000000000003', 'platform:topup_fee_revenue','topup_fee_revenue', 'credit'),
    ('00000000-0000-0000-0000-000000000004', 'platform:expired_credits',  'expired_credits',   'credit'),
    ('00000000-0000-0000-0000-000000000005', 'platform:grants',           'grants',            'debit');

CREATE TABLE ledger_transactions (
    id            UUID PRIMARY KEY,
    -- Idempotency: request id, Stripe event or session id, refund id, grant id.
    external_id   TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('grant', 'usage', 'topup', 'refund', 'dispute',
                                                'dispute_reinstated', 'expiry', 'reversal')),
    account_id    UUID REFERENCES accounts(id),
    description   TEXT NOT NULL DEFAULT '',
    metadata      JSONB NOT NULL DEFAULT '{}',
    effective_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_transactions_account_idx ON ledger_transactions (account_id, effective_at);
CREATE INDEX ledger_transactions_kind_idx ON ledger_transactions (kind, effective_at);

CREATE TABLE ledger_entries (
    id                 BIGSERIAL PRIMARY KEY,
    transaction_id     UUID NOT NULL REFERENCES ledger_transactions(id),
    ledger_account_id  UUID NOT NULL REFERENCES ledger_accounts(id),
    amount             NUMERIC(38,12) NOT NULL CHECK (amount <> 0),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ledger_entries_txn_idx ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_account_idx ON ledger_entries (ledger_account_id);

-- Append-only: history is corrected by reversing transactions, never by editing.
CREATE FUNCTION infron_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are append-only (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION infron_ledger_append_only();
CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION infron_ledger_append_only();

-- Every transaction balances: checked at commit, once the whole transaction is written.
CREATE FUNCTION infron_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total NUMERIC;
BEGIN
    SELECT coalesce(sum(amount), 0) INTO total FROM ledger_entries WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance (sum %)', NEW.transaction_id, total;
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION infron_ledger_balanced();

-- Request logs: metadata only, never prompt or completion text. Partitioned by month so
-- finance and activity queries prune to the months they read.
CREATE TABLE request_logs (
    id                   UUID NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    account_id           UUID NOT NULL,
    api_key_id           UUID,
    requested_model      TEXT NOT NULL,
    model                TEXT,
    provider             TEXT,
    upstream_model       TEXT,
    endpoint_kind        TEXT NOT NULL DEFAULT 'chat',
    prompt_tokens        BIGINT NOT NULL DEFAULT 0,
    completion_tokens    BIGINT NOT NULL DEFAULT 0,
    cached_tokens        BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens   BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens     BIGINT NOT NULL DEFAULT 0,
    cost                 NUMERIC(38,12) NOT NULL DEFAULT 0,
    cost_details         JSONB,
    -- Prices in effect for this request, so a later catalog change never rewrites history.
    prices               JSONB,
    usage_source         TEXT,
    status               SMALLINT NOT NULL,
    error_class          TEXT,
    finish_reason        TEXT,
    streamed             BOOLEAN NOT NULL DEFAULT false,
    cancelled            BOOLEAN NOT NULL DEFAULT false,
    cache_hit            BOOLEAN NOT NULL DEFAULT false,
    attempts             JSONB NOT NULL DEFAULT '[]',
    latency_ms           INTEGER,
    first_token_ms       INTEGER,
    completed_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT;
CREATE INDEX request_logs_account_idx ON request_logs (account_id, created_at);
CREATE INDEX request_logs_key_idx ON request_logs (api_key_id, created_at);

-- Creates monthly partitions from the current month through `months_ahead` months ahead.
-- Called by `infron migrate`/`serve` at start and daily by the server.
CREATE FUNCTION infron_ensure_request_log_partitions(months_ahead INTEGER) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    m DATE := date_trunc('month', now())::date;
    i INTEGER;
    part TEXT;
BEGIN
    FOR i IN 0..months_ahead LOOP
        part := 'request_logs_' || to_char(m + make_interval(months => i), 'YYYY_MM');
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
                           part, m + make_interval(months => i), m + make_interval(months => i + 1));
        END IF;
    END LOOP;
END $$;
SELECT infron_ensure_request_log_partitions(2);
