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

-- Compaction: compact_rollups() keeps its work on usage_daily and ledger_daily (the function
-- before this migration, renamed) and goes on to merge the activity rollups' deltas of the same
-- recent days and to drop hours older than eight days.
ALTER FUNCTION finance.compact_rollups(DATE) RENAME TO compact_usage_and_ledger;

-- Merges the groups of `tbl` (activity_daily or activity_hourly, bucket column `bucket`) with
-- several rows, for buckets from `since` on, into one row each.
CREATE FUNCTION finance.compact_activity(tbl TEXT, bucket TEXT, since TIMESTAMPTZ)
RETURNS TABLE (rows_merged BIGINT, rows_written BIGINT)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        WITH dup AS (
            SELECT d.%2$I AS b, d.account_id, d.dim, d.api_key_id, d.model, d.provider
            FROM finance.%1$I d WHERE d.%2$I >= $1
            GROUP BY 1, 2, 3, 4, 5, 6
            HAVING count(*) > 1
        ), gone AS (
            DELETE FROM finance.%1$I u USING dup x
            WHERE u.%2$I >= $1 AND u.%2$I = x.b AND u.account_id = x.account_id AND u.dim = x.dim
              AND coalesce(u.api_key_id, '00000000-0000-0000-0000-000000000000')
                = coalesce(x.api_key_id, '00000000-0000-0000-0000-000000000000')
              AND coalesce(u.model, '') = coalesce(x.model, '')
              AND coalesce(u.provider, '') = coalesce(x.provider, '')
            RETURNING u.*
        ), written AS (
            INSERT INTO finance.%1$I (%2$I, account_id, dim, api_key_id, model, provider,
                requests, prompt_tokens, completion_tokens, reasoning_tokens, cost)
            SELECT g.%2$I, g.account_id, g.dim, g.api_key_id, g.model, g.provider, sum(g.requests),
                   sum(g.prompt_tokens), sum(g.completion_tokens), sum(g.reasoning_tokens), sum(g.cost)
            FROM gone g
            GROUP BY g.%2$I, g.account_id, g.dim, g.api_key_id, g.model, g.provider
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM written)$q$, tbl, bucket)
    USING since;
END $$;

CREATE FUNCTION finance.compact_rollups(from_day DATE DEFAULT NULL)
RETURNS TABLE (rollup TEXT, rows_merged BIGINT, rows_written BIGINT)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    since DATE := coalesce(from_day, (now() AT TIME ZONE 'UTC')::date - 2);
BEGIN
    -- It takes the advisory lock (held to the end of the transaction) and returns nothing when
    -- another compaction is running.
    RETURN QUERY SELECT * FROM finance.compact_usage_and_ledger(from_day);
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT 'activity_daily'::text, c.rows_merged, c.rows_written
        FROM finance.compact_activity('activity_daily', 'day', since::timestamp AT TIME ZONE 'UTC') c;
    DELETE FROM finance.activity_hourly
    WHERE hour < ((now() AT TIME ZONE 'UTC')::date - 8)::timestamp AT TIME ZONE 'UTC';
    RETURN QUERY SELECT 'activity_hourly'::text, c.rows_merged, c.rows_written
        FROM finance.compact_activity('activity_hourly', 'hour', since::timestamp AT TIME ZONE 'UTC') c;
END $$;
COMMENT ON FUNCTION finance.compact_rollups(DATE) IS
    'Merges the rollup groups that have several rows, for days from from_day on (default: the last '
    'three UTC days), into one row each, and drops activity hours older than eight days. Safe to '
    'call at any time and from any number of instances (one runs, the others return no rows); '
    'meant to run every minute or so. compact_rollups(''-infinity'') compacts everything.';

-- Maintenance and capture functions are for the owner only, as before.
REVOKE ALL ON FUNCTION finance.compact_rollups(DATE) FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.compact_usage_and_ledger(DATE) FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.compact_activity(TEXT, TEXT, TIMESTAMPTZ) FROM PUBLIC;

GRANT SELECT ON finance.activity_daily, finance.activity_hourly TO infron_finance;
