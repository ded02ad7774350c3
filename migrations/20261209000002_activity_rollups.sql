-- Rollups for the dashboard's key lists and Activity views, which must answer within 50 ms at a
-- tenant with millions of requests (bench/pages):
--
-- * finance.activity_daily: per UTC day of completion (as finance.usage_daily), account, and
--   EITHER key (dim 'k') OR model and provider (dim 'm'). A page shows one dimension at a time;
--   finance.usage_daily has a row per day, key, model and provider, 48,000 rows over three
--   months at a tenant with 12 keys and 24 models, which took 70-80 ms to sum. Here the same
--   three months are about 3,000 rows.
-- * finance.activity_hourly: the same per UTC hour the request started, for the 24- and
--   48-hour views, which scanned the request log itself (150 ms at 22,000 requests a day).
--   Only the last eight days are kept.
--
-- Both are filled by the statement-level trigger that already fills finance.usage_daily (one
-- trigger, one pass over the inserted rows per insert), as append-only deltas merged by
-- finance.compact_rollups(). A member who sees only their own keys still reads usage_daily
-- (daily) or the request log (hourly), restricted to those keys.

-- Inserts into request_logs wait until this migration commits (see the backfill below).
LOCK TABLE request_logs IN SHARE ROW EXCLUSIVE MODE;

CREATE TABLE finance.activity_daily (
    day                 DATE NOT NULL,
    account_id          UUID NOT NULL,
    -- 'k': per key (model and provider NULL); 'm': per model and provider (api_key_id NULL).
    dim                 "char" NOT NULL CHECK (dim IN ('k', 'm')),
    api_key_id          UUID,
    model               TEXT,
    provider            TEXT,
    requests            BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost                NUMERIC(38,12) NOT NULL
);
CREATE INDEX activity_daily_account_idx ON finance.activity_daily (account_id, dim, day);
CREATE INDEX activity_daily_key_idx ON finance.activity_daily (api_key_id, day) WHERE dim = 'k';
COMMENT ON TABLE finance.activity_daily IS
    'Rollup of request_logs per (UTC day of completed_at, account) and either key (dim k) or '
    'model and provider (dim m). Several rows may exist per group (deltas not yet compacted): '
    'always SUM.';

CREATE TABLE finance.activity_hourly (
    hour                TIMESTAMPTZ NOT NULL,
    account_id          UUID NOT NULL,
    dim                 "char" NOT NULL CHECK (dim IN ('k', 'm')),
    api_key_id          UUID,
    model               TEXT,
    provider            TEXT,
    requests            BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost                NUMERIC(38,12) NOT NULL
);
CREATE INDEX activity_hourly_account_idx ON finance.activity_hourly (account_id, dim, hour);
COMMENT ON TABLE finance.activity_hourly IS
    'finance.activity_daily per UTC hour of created_at, for the last eight days.';

-- The one capture trigger fills all three usage rollups from the same transition table.
CREATE OR REPLACE FUNCTION finance.usage_daily_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO finance.usage_daily (day, account_id, api_key_id, model, provider, requests,
        failed_requests, cancelled_requests, streamed_requests, cache_hits, charged_requests,
        prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
        cost, latency_ms_sum, latency_samples)
    SELECT (r.completed_at AT TIME ZONE 'UTC')::date, r.account_id, r.api_key_id, r.model, r.provider,
           count(*), count(*) FILTER (WHERE r.status >= 400), count(*) FILTER (WHERE r.cancelled),
           count(*) FILTER (WHERE r.streamed), count(*) FILTER (WHERE r.cache_hit),
           count(*) FILTER (WHERE r.cost <> 0),
           sum(r.prompt_tokens), sum(r.completion_tokens), sum(r.cached_tokens),
           sum(r.cache_write_tokens), sum(r.reasoning_tokens), sum(r.cost),
           coalesce(sum(r.latency_ms), 0), count(r.latency_ms)
    FROM new_request_logs r
    GROUP BY 1, 2, 3, 4, 5;

    INSERT INTO finance.activity_daily (day, account_id, dim, api_key_id, model, provider,
        requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
    SELECT r.day, r.account_id, CASE WHEN grouping(r.api_key_id) = 0 THEN 'k' ELSE 'm' END::"char",
           r.api_key_id, r.model, r.provider, count(*), sum(r.prompt_tokens),
           sum(r.completion_tokens), sum(r.reasoning_tokens), sum(r.cost)
    FROM (SELECT (completed_at AT TIME ZONE 'UTC')::date AS day, * FROM new_request_logs) r
    GROUP BY GROUPING SETS ((r.day, r.account_id, r.api_key_id), (r.day, r.account_id, r.model, r.provider));

    INSERT INTO finance.activity_hourly (hour, account_id, dim, api_key_id, model, provider,
        requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
    SELECT r.hour, r.account_id, CASE WHEN grouping(r.api_key_id) = 0 THEN 'k' ELSE 'm' END::"char",
           r.api_key_id, r.model, r.provider, count(*), sum(r.prompt_tokens),
           sum(r.completion_tokens), sum(r.reasoning_tokens), sum(r.cost)
    FROM (SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, *
          FROM new_request_logs WHERE created_at >= now() - interval '8 days') r
    GROUP BY GROUPING SETS ((r.hour, r.account_id, r.api_key_id), (r.hour, r.account_id, r.model, r.provider));
    RETURN NULL;
END $$;

-- What exists already: days from the daily rollup, hours of the last eight days from the log.
-- Request-log inserts wait from the LOCK at the top of this file until the migration commits,
-- so every row is counted once: before the backfill read it, or by the new trigger after.
INSERT INTO finance.activity_daily (day, account_id, dim, api_key_id, model, provider,
    requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
SELECT u.day, u.account_id, CASE WHEN grouping(u.api_key_id) = 0 THEN 'k' ELSE 'm' END::"char",
       u.api_key_id, u.model, u.provider, sum(u.requests), sum(u.prompt_tokens),
       sum(u.completion_tokens), sum(u.reasoning_tokens), sum(u.cost)
FROM finance.usage_daily u
GROUP BY GROUPING SETS ((u.day, u.account_id, u.api_key_id), (u.day, u.account_id, u.model, u.provider));

INSERT INTO finance.activity_hourly (hour, account_id, dim, api_key_id, model, provider,
    requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
SELECT r.hour, r.account_id, CASE WHEN grouping(r.api_key_id) = 0 THEN 'k' ELSE 'm' END::"char",
       r.api_key_id, r.model, r.provider, count(*), sum(r.prompt_tokens),
       sum(r.completion_tokens), sum(r.reasoning_tokens), sum(r.cost)
FROM (SELECT date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, account_id,
             api_key_id, model, provider, prompt_tokens, completion_tokens, reasoning_tokens, cost
      FROM request_logs WHERE created_at >= now() - interval '8 days') r
GROUP BY GROUPING SETS ((r.hour, r.account_id, r.api_key_id), (r.hour, r.account_id, r.model, r.provider));

-- A rebuild of usage days rebuilds their activity rows from the rebuilt usage.
CREATE OR REPLACE FUNCTION finance.rebuild_usage_daily(from_day DATE, to_day DATE) RETURNS BIGINT
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n BIGINT;
BEGIN
    LOCK TABLE finance.usage_daily IN SHARE ROW EXCLUSIVE MODE;
    LOCK TABLE finance.activity_daily IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM finance.usage_daily WHERE day BETWEEN from_day AND to_day;
    INSERT INTO finance.usage_daily (day, account_id, api_key_id, model, provider, requests,
        failed_requests, cancelled_requests, streamed_requests, cache_hits, charged_requests,
        prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
        cost, latency_ms_sum, latency_samples)
    SELECT * FROM finance.usage_daily_from_logs(from_day, to_day);
    GET DIAGNOSTICS n = ROW_COUNT;
    DELETE FROM finance.activity_daily WHERE day BETWEEN from_day AND to_day;
    INSERT INTO finance.activity_daily (day, account_id, dim, api_key_id, model, provider,
        requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
    SELECT u.day, u.account_id, CASE WHEN grouping(u.api_key_id) = 0 THEN 'k' ELSE 'm' END::"char",
           u.api_key_id, u.model, u.provider, sum(u.requests), sum(u.prompt_tokens),
           sum(u.completion_tokens), sum(u.reasoning_tokens), sum(u.cost)
    FROM finance.usage_daily u
    WHERE u.day BETWEEN from_day AND to_day
    GROUP BY GROUPING SETS ((u.day, u.account_id, u.api_key_id), (u.day, u.account_id, u.model, u.provider));
    RETURN n;
END $$;

-- Compaction merges the new rollups' deltas of the same recent days and drops hours older than
-- eight days.
CREATE OR REPLACE FUNCTION finance.compact_rollups(from_day DATE DEFAULT NULL)
RETURNS TABLE (rollup TEXT, rows_merged BIGINT, rows_written BIGINT)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    since DATE := coalesce(from_day, (now() AT TIME ZONE 'UTC')::date - 2);
    since_hour TIMESTAMPTZ := since::timestamp AT TIME ZONE 'UTC';
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

    WITH dup AS (
        SELECT d.day, d.account_id, d.dim, d.api_key_id, d.model, d.provider
        FROM finance.activity_daily d WHERE d.day >= since
        GROUP BY d.day, d.account_id, d.dim, d.api_key_id, d.model, d.provider
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM finance.activity_daily u USING dup x
        WHERE u.day >= since AND u.day = x.day AND u.account_id = x.account_id AND u.dim = x.dim
          AND coalesce(u.api_key_id, '00000000-0000-0000-0000-000000000000')
            = coalesce(x.api_key_id, '00000000-0000-0000-0000-000000000000')
          AND coalesce(u.model, '') = coalesce(x.model, '')
          AND coalesce(u.provider, '') = coalesce(x.provider, '')
        RETURNING u.*
    ), written AS (
        INSERT INTO finance.activity_daily (day, account_id, dim, api_key_id, model, provider,
            requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
        SELECT g.day, g.account_id, g.dim, g.api_key_id, g.model, g.provider, sum(g.requests),
               sum(g.prompt_tokens), sum(g.completion_tokens), sum(g.reasoning_tokens), sum(g.cost)
        FROM gone g
        GROUP BY g.day, g.account_id, g.dim, g.api_key_id, g.model, g.provider
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written) INTO n_merged, n_written;
    rollup := 'activity_daily'; rows_merged := n_merged; rows_written := n_written;
    RETURN NEXT;

    DELETE FROM finance.activity_hourly
    WHERE hour < ((now() AT TIME ZONE 'UTC')::date - 8)::timestamp AT TIME ZONE 'UTC';
    WITH dup AS (
        SELECT d.hour, d.account_id, d.dim, d.api_key_id, d.model, d.provider
        FROM finance.activity_hourly d WHERE d.hour >= since_hour
        GROUP BY d.hour, d.account_id, d.dim, d.api_key_id, d.model, d.provider
        HAVING count(*) > 1
    ), gone AS (
        DELETE FROM finance.activity_hourly u USING dup x
        WHERE u.hour >= since_hour AND u.hour = x.hour AND u.account_id = x.account_id
          AND u.dim = x.dim
          AND coalesce(u.api_key_id, '00000000-0000-0000-0000-000000000000')
            = coalesce(x.api_key_id, '00000000-0000-0000-0000-000000000000')
          AND coalesce(u.model, '') = coalesce(x.model, '')
          AND coalesce(u.provider, '') = coalesce(x.provider, '')
        RETURNING u.*
    ), written AS (
        INSERT INTO finance.activity_hourly (hour, account_id, dim, api_key_id, model, provider,
            requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
        SELECT g.hour, g.account_id, g.dim, g.api_key_id, g.model, g.provider, sum(g.requests),
               sum(g.prompt_tokens), sum(g.completion_tokens), sum(g.reasoning_tokens), sum(g.cost)
        FROM gone g
        GROUP BY g.hour, g.account_id, g.dim, g.api_key_id, g.model, g.provider
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written) INTO n_merged, n_written;
    rollup := 'activity_hourly'; rows_merged := n_merged; rows_written := n_written;
    RETURN NEXT;
END $$;

GRANT SELECT ON finance.activity_daily, finance.activity_hourly TO infron_finance;
