-- Settlements posted in batches (see docs/architecture.md, "The money path"):
-- * request_logs is the sub-ledger: one row per request, exactly once by request id. The ledger
--   gets one usage transaction per account, UTC day and writer batch, and every charged row
--   names it (usage_txn_id), so the ledger and the logs still reconcile request by request.
-- * A charge never exceeds its hold: what a provider reported beyond it is `overage`, absorbed
--   by the platform on the new `provider_overage` book, never taken from the tenant.
--   `cost` stays what the tenant was charged; cost + overage is the usage at list price.
-- * Prices are stored once per distinct price set (price_snapshots), not as JSON per row; the
--   cost breakdown is recomputed from tokens and prices when shown.
-- * Key-limit usage (api_key_usage) is written by the ledger writer, aggregated per batch,
--   instead of a per-entry trigger.

ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_kind_check;
ALTER TABLE ledger_accounts ADD CONSTRAINT ledger_accounts_kind_check CHECK (kind IN (
    'credits', 'stripe_clearing', 'usage_revenue', 'topup_fee_revenue', 'expired_credits',
    'grants', 'provider_overage'));
INSERT INTO ledger_accounts (id, code, kind, normal_side) VALUES
    ('00000000-0000-0000-0000-000000000006', 'platform:provider_overage', 'provider_overage', 'debit');
COMMENT ON TABLE ledger_accounts IS
    'Books. provider_overage (debit normal): usage providers reported beyond a request''s hold, '
    'recognised as usage revenue but paid by the platform, not the tenant.';

CREATE TABLE price_snapshots (
    -- Derived from the prices themselves (a hash), so every instance names a price set alike.
    id          UUID PRIMARY KEY,
    prices      JSONB NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL DEFAULT now()
);
COMMENT ON TABLE price_snapshots IS
    'Each distinct set of endpoint prices (USD per token) a request was charged at; '
    'request_logs.price_id points here.';

ALTER TABLE request_logs
    ADD COLUMN overage       NUMERIC(38,12) NOT NULL DEFAULT 0 CHECK (overage >= 0),
    ADD COLUMN usage_txn_id  UUID,
    ADD COLUMN price_id      UUID,
    ALTER COLUMN attempts DROP NOT NULL,
    ALTER COLUMN attempts DROP DEFAULT;
COMMENT ON COLUMN request_logs.cost IS 'What the tenant was charged (never more than the hold).';
COMMENT ON COLUMN request_logs.overage IS
    'Usage the provider reported beyond the hold, at list price; booked to provider_overage.';
COMMENT ON COLUMN request_logs.usage_txn_id IS
    'The usage ledger transaction that charged this request (one per account, day and batch).';
COMMENT ON COLUMN request_logs.attempts IS
    'Provider attempts when there was more than the one that answered (status and error class '
    'only); NULL when the first attempt answered.';
CREATE INDEX request_logs_overage_idx ON request_logs (completed_at) WHERE overage > 0;
CREATE INDEX request_logs_usage_txn_idx ON request_logs (usage_txn_id) WHERE usage_txn_id IS NOT NULL;

-- Existing rows: their prices become snapshots, their per-request usage transactions are
-- linked. One pass over request_logs.
INSERT INTO price_snapshots (id, prices)
SELECT DISTINCT md5(prices::text)::uuid, prices FROM request_logs WHERE prices IS NOT NULL
ON CONFLICT DO NOTHING;
UPDATE request_logs r
SET price_id = CASE WHEN r.prices IS NULL THEN NULL ELSE md5(r.prices::text)::uuid END,
    usage_txn_id = (SELECT t.id FROM ledger_transactions t
                    WHERE t.external_id = 'request:' || r.id::text),
    attempts = CASE WHEN jsonb_array_length(r.attempts) <= 1 THEN NULL ELSE r.attempts END;
ALTER TABLE request_logs DROP COLUMN prices, DROP COLUMN cost_details;

-- Lots stay a projection of the ledger (a trigger, so no posting path can forget them); the
-- key-limit part moves to the ledger writer.
CREATE OR REPLACE FUNCTION infron_project_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    acct       UUID;
    book_kind  TEXT;
    t          RECORD;
    need       NUMERIC;
    lot        RECORD;
    take       NUMERIC;
    days       INTEGER;
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
    RETURN NULL;
END $$;

-- Revenue per day gains what the platform absorbed.
CREATE OR REPLACE VIEW finance.daily_revenue AS
SELECT day,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'usage_revenue' AND txn_kind = 'usage'), 0)
           AS usage_revenue,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'usage_revenue' AND txn_kind <> 'usage'), 0)
           AS usage_revenue_adjustments,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind = 'topup'), 0)
           AS topup_fee_revenue,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind <> 'topup'), 0)
           AS topup_fee_adjustments,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'expired_credits'), 0)
           AS expired_credits,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind IN ('usage_revenue', 'topup_fee_revenue',
                                                                  'expired_credits')), 0)
           AS net_revenue,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'grants'), 0)
           AS grants_expense,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind IN ('usage_revenue', 'topup_fee_revenue',
                                                                  'expired_credits')), 0)
         - coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'grants'), 0)
           AS net_revenue_after_grants,
       coalesce(sum(debits) FILTER (WHERE book_kind = 'stripe_clearing'), 0) AS cash_in,
       coalesce(sum(credits) FILTER (WHERE book_kind = 'stripe_clearing'), 0) AS cash_out,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'provider_overage'), 0)
           AS provider_overage
FROM finance.ledger_daily
GROUP BY day;
COMMENT ON VIEW finance.daily_revenue IS
    'Platform revenue per UTC day from the platform books. usage_revenue: usage at list price '
    '(what tenants were charged plus provider_overage); usage_revenue_adjustments: other kinds '
    'touching usage revenue (reversals); topup_fee_revenue: fees on top-ups; topup_fee_adjustments: '
    'fees given back by refunds/disputes (negative) or reinstated; expired_credits: breakage from '
    'expired credits; net_revenue: all three books net of refunds and disputes; grants_expense: '
    'credits granted for free; cash_in/cash_out: Stripe clearing debits and credits; '
    'provider_overage: usage providers reported beyond the hold, paid by the platform.';

CREATE VIEW finance.provider_overages AS
SELECT r.id AS request_id, r.completed_at, r.account_id, r.api_key_id, r.model, r.provider,
       r.upstream_model, r.prompt_tokens, r.completion_tokens, r.cost AS charged, r.overage,
       r.cost + r.overage AS list_cost, r.usage_txn_id
FROM public.request_logs r
WHERE r.overage > 0;
COMMENT ON VIEW finance.provider_overages IS
    'Requests whose provider reported more usage than the request''s hold covered: charged is what '
    'the tenant paid (the hold), overage what the platform absorbed (booked to provider_overage in '
    'the request''s usage transaction). Filter on completed_at.';

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infron_finance') THEN
        GRANT SELECT ON public.price_snapshots TO infron_finance;
        GRANT SELECT ON finance.provider_overages TO infron_finance;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'finance grants on price_snapshots skipped (%)', SQLERRM;
END $$;

COMMENT ON COLUMN finance.usage_daily.charged_requests IS
    'Requests with a non-zero charge (each named by one usage transaction, which may cover '
    'several requests of a writer batch).';
COMMENT ON VIEW finance.usage_reconciliation IS
    'Per UTC day and account: cost in the request logs against usage charged on the tenant''s '
    'credits book. usage_transactions counts the usage transactions (one per account, day and '
    'writer batch), ledger_revenue is usage at list price (charged plus provider overage). '
    'difference is non-zero only while settlements are in flight (request logs and their usage '
    'transaction are written in one database transaction) or if something is wrong.';
