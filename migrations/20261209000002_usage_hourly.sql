-- An hourly usage rollup for the dashboard's 24- and 48-hour Activity views, which read the
-- request log itself until now: at a tenant with tens of thousands of requests a day that scan
-- took well over the dashboard's 50 ms budget (bench/pages). Like finance.usage_daily it is an
-- append-only delta table written by a statement-level trigger on request_logs (one row per
-- group an INSERT touched, no row locks in the write path), merged by
-- finance.compact_rollups(). Hours are UTC hours of created_at (when the request started), as
-- the hourly view always counted them. Only recent hours are kept: compaction deletes hours
-- older than eight days (the daily rollup keeps the long history).

CREATE TABLE finance.usage_hourly (
    hour                TIMESTAMPTZ NOT NULL,
    account_id          UUID NOT NULL,
    api_key_id          UUID,
    model               TEXT,
    provider            TEXT,
    requests            BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost                NUMERIC(38,12) NOT NULL
);
CREATE INDEX usage_hourly_account_idx ON finance.usage_hourly (account_id, hour);
COMMENT ON TABLE finance.usage_hourly IS
    'Rollup of request_logs per (UTC hour of created_at, account, key, model, provider) for the '
    'last eight days. Several rows may exist per group (deltas not yet compacted): always SUM.';

CREATE FUNCTION finance.usage_hourly_capture() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO finance.usage_hourly (hour, account_id, api_key_id, model, provider, requests,
        prompt_tokens, completion_tokens, reasoning_tokens, cost)
    SELECT date_trunc('hour', r.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', r.account_id,
           r.api_key_id, r.model, r.provider, count(*), sum(r.prompt_tokens),
           sum(r.completion_tokens), sum(r.reasoning_tokens), sum(r.cost)
    FROM new_request_logs r
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION finance.usage_hourly_capture() IS
    'Statement trigger on request_logs: appends one delta row per hour and group of the inserted rows.';

CREATE TRIGGER finance_usage_hourly_capture AFTER INSERT ON request_logs
    REFERENCING NEW TABLE AS new_request_logs
    FOR EACH STATEMENT EXECUTE FUNCTION finance.usage_hourly_capture();

-- The last eight days of what exists already, read while the trigger above holds its lock on
-- request_logs, so no insert is counted twice or missed.
INSERT INTO finance.usage_hourly (hour, account_id, api_key_id, model, provider, requests,
    prompt_tokens, completion_tokens, reasoning_tokens, cost)
SELECT date_trunc('hour', r.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', r.account_id,
       r.api_key_id, r.model, r.provider, count(*), sum(r.prompt_tokens),
       sum(r.completion_tokens), sum(r.reasoning_tokens), sum(r.cost)
FROM request_logs r
WHERE r.created_at >= date_trunc('day', now()) - interval '8 days'
GROUP BY 1, 2, 3, 4, 5;

GRANT SELECT ON finance.usage_hourly TO infron_finance;

-- Compaction also merges the hourly deltas of the same recent days and drops hours older than
-- eight days.
CREATE OR REPLACE FUNCTION finance.compact_rollups(from_day DATE DEFAULT NULL)
RETURNS TABLE (rollup TEXT, rows_merged BIGINT, rows_written BIGINT)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    since DATE := coalesce(from_day, (now() AT TIME ZONE 'UTC')::date - 2);
    since_hour TIMESTAMPTZ := greatest(coalesce(from_day, (now() AT TIME ZONE 'UTC')::date - 2),
                                       (now() AT TIME ZONE 'UTC')::date - 8)::timestamp AT TIME ZONE 'UTC';
    n_merged BIGINT;
    n_written BIGINT;
BEGIN
    -- One compaction at a time; a concurrent call returns nothing instead of waiting.
    IF NOT pg_try_advisory_xact_lock(hashtext('infron.finance.compact_rollups')) THEN
        RETURN;
    END IF;

    WITH dup AS (
        SELECT d.day, d.account_id, d.api_key_id, d.model, d.provider
        FROM finance.usage_daily d WHERE d.day >= since
        GROUP BY d.day, d.account_id, d.api_key_id, d.model, d.provider
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM finance.usage_daily u USING dup x
        WHERE u.day >= since AND u.day = x.day AND u.account_id = x.account_id
          AND coalesce(u.api_key_id, '00000000-0000-0000-0000-000000000000')
            = coalesce(x.api_key_id, '00000000-0000-0000-0000-000000000000')
          AND coalesce(u.model, '') = coalesce(x.model, '')
          AND coalesce(u.provider, '') = coalesce(x.provider, '')
        RETURNING u.*
    ), written AS (
        INSERT INTO finance.usage_daily (day, account_id, api_key_id, model, provider, requests,
            failed_requests, cancelled_requests, streamed_requests, cache_hits, charged_requests,
            prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
            cost, latency_ms_sum, latency_samples)
        SELECT g.day, g.account_id, g.api_key_id, g.model, g.provider, sum(g.requests),
               sum(g.failed_requests), sum(g.cancelled_requests), sum(g.streamed_requests),
               sum(g.cache_hits), sum(g.charged_requests), sum(g.prompt_tokens),
               sum(g.completion_tokens), sum(g.cached_tokens), sum(g.cache_write_tokens),
               sum(g.reasoning_tokens), sum(g.cost), sum(g.latency_ms_sum), sum(g.latency_samples)
        FROM gone g
        GROUP BY g.day, g.account_id, g.api_key_id, g.model, g.provider
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written) INTO n_merged, n_written;
    rollup := 'usage_daily'; rows_merged := n_merged; rows_written := n_written;
    RETURN NEXT;

    WITH dup AS (
        SELECT d.day, d.ledger_account_id, d.txn_kind, d.account_id
        FROM finance.ledger_daily d WHERE d.day >= since
        GROUP BY d.day, d.ledger_account_id, d.txn_kind, d.account_id
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM finance.ledger_daily l USING dup x
        WHERE l.day >= since AND l.day = x.day AND l.ledger_account_id = x.ledger_account_id
          AND l.txn_kind = x.txn_kind
          AND coalesce(l.account_id, '00000000-0000-0000-0000-000000000000')
            = coalesce(x.account_id, '00000000-0000-0000-0000-000000000000')
        RETURNING l.*
    ), written AS (
        INSERT INTO finance.ledger_daily (day, ledger_account_id, book_kind, txn_kind, account_id,
                                          debits, credits, entries)
        SELECT g.day, g.ledger_account_id, g.book_kind, g.txn_kind, g.account_id,
               sum(g.debits), sum(g.credits), sum(g.entries)
        FROM gone g
        GROUP BY g.day, g.ledger_account_id, g.book_kind, g.txn_kind, g.account_id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written) INTO n_merged, n_written;
    rollup := 'ledger_daily'; rows_merged := n_merged; rows_written := n_written;
    RETURN NEXT;

    DELETE FROM finance.usage_hourly
    WHERE hour < ((now() AT TIME ZONE 'UTC')::date - 8)::timestamp AT TIME ZONE 'UTC';
    WITH dup AS (
        SELECT d.hour, d.account_id, d.api_key_id, d.model, d.provider
        FROM finance.usage_hourly d WHERE d.hour >= since_hour
        GROUP BY d.hour, d.account_id, d.api_key_id, d.model, d.provider
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM finance.usage_hourly u USING dup x
        WHERE u.hour >= since_hour AND u.hour = x.hour AND u.account_id = x.account_id
          AND coalesce(u.api_key_id, '00000000-0000-0000-0000-000000000000')
            = coalesce(x.api_key_id, '00000000-0000-0000-0000-000000000000')
          AND coalesce(u.model, '') = coalesce(x.model, '')
          AND coalesce(u.provider, '') = coalesce(x.provider, '')
        RETURNING u.*
    ), written AS (
        INSERT INTO finance.usage_hourly (hour, account_id, api_key_id, model, provider, requests,
            prompt_tokens, completion_tokens, reasoning_tokens, cost)
        SELECT g.hour, g.account_id, g.api_key_id, g.model, g.provider, sum(g.requests),
               sum(g.prompt_tokens), sum(g.completion_tokens), sum(g.reasoning_tokens), sum(g.cost)
        FROM gone g
        GROUP BY g.hour, g.account_id, g.api_key_id, g.model, g.provider
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written) INTO n_merged, n_written;
    rollup := 'usage_hourly'; rows_merged := n_merged; rows_written := n_written;
    RETURN NEXT;
END $$;
