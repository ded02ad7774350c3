-- Finance: read-only SQL views over usage and the ledger, the rollups that keep them fast at
-- tens of millions of requests a month, and the `infron_finance` role. See docs/finance.md.
--
-- Days are UTC calendar days. Usage is attributed to the day a request completed
-- (request_logs.completed_at), which is the instant the ledger writer uses as the usage
-- transaction's effective_at, so request-log usage and ledger usage agree day by day.
--
-- Rollups are append-only "delta" tables written by statement-level triggers: every INSERT into
-- request_logs or ledger_entries adds one pre-aggregated row per group it touched. No row is
-- ever updated in the write path, so the triggers take no row locks and cannot contend or
-- deadlock with the ledger writer; views SUM the deltas, so they are exact at every instant.
-- finance.compact_rollups(), meant to run every minute or so (from the server or cron; harmless
-- to call at any time), merges the groups of recent days that have several rows into one.

CREATE SCHEMA finance;
COMMENT ON SCHEMA finance IS
    'Read-only reporting over request_logs and the double-entry ledger: daily rollups, views and '
    'reconciliation functions. Granted to the infron_finance role. See docs/finance.md.';

-- ---------------------------------------------------------------------------------------------
-- Rollup: usage per UTC day, account, key, model and provider
-- ---------------------------------------------------------------------------------------------

CREATE TABLE finance.usage_daily (
    day                 DATE NOT NULL,
    account_id          UUID NOT NULL,
    api_key_id          UUID,
    model               TEXT,
    provider            TEXT,
    requests            BIGINT NOT NULL,
    failed_requests     BIGINT NOT NULL,
    cancelled_requests  BIGINT NOT NULL,
    streamed_requests   BIGINT NOT NULL,
    cache_hits          BIGINT NOT NULL,
    charged_requests    BIGINT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    cached_tokens       BIGINT NOT NULL,
    cache_write_tokens  BIGINT NOT NULL,
    reasoning_tokens    BIGINT NOT NULL,
    cost                NUMERIC(38,12) NOT NULL,
    latency_ms_sum      BIGINT NOT NULL,
    latency_samples     BIGINT NOT NULL
);
-- Rows arrive roughly in day order (deltas for today, compaction rewriting recent days), so a
-- BRIN index serves day ranges at almost no write cost.
CREATE INDEX usage_daily_day_idx ON finance.usage_daily USING brin (day);
CREATE INDEX usage_daily_account_idx ON finance.usage_daily (account_id, day);
COMMENT ON TABLE finance.usage_daily IS
    'Rollup of request_logs per (UTC day of completed_at, account, key, model, provider). Several '
    'rows may exist per group (deltas not yet compacted): always SUM, or use finance.daily_usage. '
    'Kept when old request_logs partitions are dropped.';
COMMENT ON COLUMN finance.usage_daily.failed_requests IS 'Requests answered with HTTP status >= 400.';
COMMENT ON COLUMN finance.usage_daily.charged_requests IS 'Requests with a non-zero cost (each has one usage ledger transaction).';
COMMENT ON COLUMN finance.usage_daily.latency_ms_sum IS 'Sum of latency_ms over the latency_samples requests that recorded one.';

-- The aggregation shared by the capture trigger and the rebuild; `rows` is request_logs-shaped.
CREATE FUNCTION finance.usage_daily_capture() RETURNS trigger
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
    RETURN NULL;
END $$;
COMMENT ON FUNCTION finance.usage_daily_capture() IS
    'Statement trigger on request_logs: appends one delta row per group of the inserted rows. Rows '
    'skipped by ON CONFLICT DO NOTHING (replayed settlements) are not in the transition table, so '
    'they are not counted twice.';

-- Statement-level, on the partitioned parent: fires for every INSERT through request_logs (the
-- only way the gateway writes). Rows inserted straight into a partition bypass it; use
-- finance.rebuild_usage_daily for those days.
CREATE TRIGGER finance_usage_daily_capture AFTER INSERT ON request_logs
    REFERENCING NEW TABLE AS new_request_logs
    FOR EACH STATEMENT EXECUTE FUNCTION finance.usage_daily_capture();

-- Day-range scans inside a month partition (rebuilds, drift checks, ad-hoc finance queries).
-- Rows arrive in time order, so a BRIN index is tiny and nearly free to maintain.
CREATE INDEX request_logs_created_brin ON request_logs USING brin (created_at) WITH (pages_per_range = 32);

-- Usage recomputed from the raw request logs for completion days [from_day, to_day]. Inlined by
-- the planner, so the created_at bounds prune request_logs to the partitions involved. Assumes a
-- request completes within a day of its start (the gateway's timeouts bound it far lower).
CREATE FUNCTION finance.usage_daily_from_logs(from_day DATE, to_day DATE)
RETURNS TABLE (day DATE, account_id UUID, api_key_id UUID, model TEXT, provider TEXT,
               requests BIGINT, failed_requests BIGINT, cancelled_requests BIGINT,
               streamed_requests BIGINT, cache_hits BIGINT, charged_requests BIGINT,
               prompt_tokens BIGINT, completion_tokens BIGINT, cached_tokens BIGINT,
               cache_write_tokens BIGINT, reasoning_tokens BIGINT, cost NUMERIC,
               latency_ms_sum BIGINT, latency_samples BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT (r.completed_at AT TIME ZONE 'UTC')::date, r.account_id, r.api_key_id, r.model, r.provider,
           count(*), count(*) FILTER (WHERE r.status >= 400), count(*) FILTER (WHERE r.cancelled),
           count(*) FILTER (WHERE r.streamed), count(*) FILTER (WHERE r.cache_hit),
           count(*) FILTER (WHERE r.cost <> 0),
           sum(r.prompt_tokens)::bigint, sum(r.completion_tokens)::bigint, sum(r.cached_tokens)::bigint,
           sum(r.cache_write_tokens)::bigint, sum(r.reasoning_tokens)::bigint, sum(r.cost),
           coalesce(sum(r.latency_ms), 0)::bigint, count(r.latency_ms)
    FROM public.request_logs r
    WHERE r.created_at >= ((from_day - 1)::timestamp AT TIME ZONE 'UTC')
      AND r.created_at < ((to_day + 1)::timestamp AT TIME ZONE 'UTC')
      AND r.completed_at >= (from_day::timestamp AT TIME ZONE 'UTC')
      AND r.completed_at < ((to_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2, 3, 4, 5
$$;
COMMENT ON FUNCTION finance.usage_daily_from_logs(DATE, DATE) IS
    'Daily usage recomputed from raw request_logs for completion days from_day..to_day (inclusive), '
    'pruned to the partitions involved. Same columns as finance.daily_usage. Slow at scale: for '
    'reconciliation and dimensions the rollup lacks.';

-- ---------------------------------------------------------------------------------------------
-- Rollup: ledger movements per UTC day, book, transaction kind and account
-- ---------------------------------------------------------------------------------------------

CREATE TABLE finance.ledger_daily (
    day                DATE NOT NULL,
    ledger_account_id  UUID NOT NULL,
    book_kind          TEXT NOT NULL,
    txn_kind           TEXT NOT NULL,
    -- The tenant concerned: the book's owner for tenant books, else the transaction's account.
    account_id         UUID,
    debits             NUMERIC(38,12) NOT NULL,
    credits            NUMERIC(38,12) NOT NULL,
    entries            BIGINT NOT NULL
);
CREATE INDEX ledger_daily_day_idx ON finance.ledger_daily USING brin (day);
CREATE INDEX ledger_daily_book_idx ON finance.ledger_daily (ledger_account_id, day);
CREATE INDEX ledger_daily_account_idx ON finance.ledger_daily (account_id, day);
COMMENT ON TABLE finance.ledger_daily IS
    'Rollup of ledger_entries per (UTC day of the transaction''s effective_at, book, transaction '
    'kind, tenant). debits = sum of positive entries, credits = sum of negated negative entries '
    '(both >= 0). Several rows may exist per group: always SUM, or use finance.daily_book_movements.';
COMMENT ON COLUMN finance.ledger_daily.account_id IS
    'Tenant concerned: owner of the book for tenant credits books, else ledger_transactions.account_id.';

CREATE FUNCTION finance.ledger_daily_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    INSERT INTO finance.ledger_daily (day, ledger_account_id, book_kind, txn_kind, account_id,
                                      debits, credits, entries)
    SELECT (t.effective_at AT TIME ZONE 'UTC')::date, e.ledger_account_id, la.kind, t.kind,
           coalesce(la.account_id, t.account_id),
           coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0),
           coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0),
           count(*)
    FROM new_ledger_entries e
    JOIN public.ledger_transactions t ON t.id = e.transaction_id
    JOIN public.ledger_accounts la ON la.id = e.ledger_account_id
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION finance.ledger_daily_capture() IS
    'Statement trigger on ledger_entries (append-only): appends one delta row per group of the '
    'inserted entries.';
CREATE TRIGGER finance_ledger_daily_capture AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION finance.ledger_daily_capture();

CREATE FUNCTION finance.ledger_daily_from_entries(from_day DATE, to_day DATE)
RETURNS TABLE (day DATE, ledger_account_id UUID, book_kind TEXT, txn_kind TEXT, account_id UUID,
               debits NUMERIC, credits NUMERIC, entries BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT (t.effective_at AT TIME ZONE 'UTC')::date, e.ledger_account_id, la.kind, t.kind,
           coalesce(la.account_id, t.account_id),
           coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0),
           coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0),
           count(*)
    FROM public.ledger_transactions t
    JOIN public.ledger_entries e ON e.transaction_id = t.id
    JOIN public.ledger_accounts la ON la.id = e.ledger_account_id
    WHERE t.effective_at >= (from_day::timestamp AT TIME ZONE 'UTC')
      AND t.effective_at < ((to_day + 1)::timestamp AT TIME ZONE 'UTC')
    GROUP BY 1, 2, 3, 4, 5
$$;
COMMENT ON FUNCTION finance.ledger_daily_from_entries(DATE, DATE) IS
    'Ledger movements recomputed from raw entries for effective days from_day..to_day (inclusive). '
    'Same columns as finance.ledger_daily. For reconciliation.';

-- ---------------------------------------------------------------------------------------------
-- Maintenance: compaction and rebuilds (not granted to the finance role)
-- ---------------------------------------------------------------------------------------------

-- Merges the groups with several rows (trigger deltas) of days from `from_day` on (default: the
-- last three UTC days, where new deltas land) into one row each; groups with a single row are
-- left alone, so nothing is rewritten needlessly. Exact under concurrent inserts: the DELETE
-- removes only rows visible to its snapshot and the INSERT writes their sum, in one statement;
-- deltas committed meanwhile wait for the next run. Takes no lock that blocks the capture
-- triggers. Returns the rows merged and written per rollup.
CREATE FUNCTION finance.compact_rollups(from_day DATE DEFAULT NULL)
RETURNS TABLE (rollup TEXT, rows_merged BIGINT, rows_written BIGINT)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    since DATE := coalesce(from_day, (now() AT TIME ZONE 'UTC')::date - 2);
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
END $$;
COMMENT ON FUNCTION finance.compact_rollups(DATE) IS
    'Merges the rollup groups that have several rows, for days from from_day on (default: the last '
    'three UTC days), into one row each. Safe to call at any time and from any number of instances '
    '(one runs, the others return no rows); meant to run every minute or so. Views are exact with or '
    'without it; it keeps them fast. compact_rollups(''-infinity'') compacts everything.';

-- Recomputes usage days [from_day, to_day] from the raw logs, e.g. after rows were loaded straight
-- into a partition. Blocks the capture trigger (and so request-log inserts) while it runs: a
-- writer waiting on the lock has not committed its rows, so they are neither lost nor counted twice.
CREATE FUNCTION finance.rebuild_usage_daily(from_day DATE, to_day DATE) RETURNS BIGINT
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n BIGINT;
BEGIN
    LOCK TABLE finance.usage_daily IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM finance.usage_daily WHERE day BETWEEN from_day AND to_day;
    INSERT INTO finance.usage_daily (day, account_id, api_key_id, model, provider, requests,
        failed_requests, cancelled_requests, streamed_requests, cache_hits, charged_requests,
        prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, reasoning_tokens,
        cost, latency_ms_sum, latency_samples)
    SELECT * FROM finance.usage_daily_from_logs(from_day, to_day);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION finance.rebuild_usage_daily(DATE, DATE) IS
    'Recomputes finance.usage_daily for completion days from_day..to_day from request_logs. Blocks '
    'request-log inserts while it runs. Returns the rows written.';

CREATE FUNCTION finance.rebuild_ledger_daily(from_day DATE, to_day DATE) RETURNS BIGINT
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n BIGINT;
BEGIN
    LOCK TABLE finance.ledger_daily IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM finance.ledger_daily WHERE day BETWEEN from_day AND to_day;
    INSERT INTO finance.ledger_daily (day, ledger_account_id, book_kind, txn_kind, account_id,
                                      debits, credits, entries)
    SELECT * FROM finance.ledger_daily_from_entries(from_day, to_day);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION finance.rebuild_ledger_daily(DATE, DATE) IS
    'Recomputes finance.ledger_daily for effective days from_day..to_day from ledger_entries. '
    'Blocks ledger postings while it runs. Returns the rows written.';

-- Backfill from what exists already. The CREATE TRIGGER statements above locked both source
-- tables against inserts until this migration commits, so nothing is missed or counted twice.
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
FROM request_logs r
GROUP BY 1, 2, 3, 4, 5;

INSERT INTO finance.ledger_daily (day, ledger_account_id, book_kind, txn_kind, account_id,
                                  debits, credits, entries)
SELECT (t.effective_at AT TIME ZONE 'UTC')::date, e.ledger_account_id, la.kind, t.kind,
       coalesce(la.account_id, t.account_id),
       coalesce(sum(e.amount) FILTER (WHERE e.amount > 0), 0),
       coalesce(-sum(e.amount) FILTER (WHERE e.amount < 0), 0),
       count(*)
FROM ledger_entries e
JOIN ledger_transactions t ON t.id = e.transaction_id
JOIN ledger_accounts la ON la.id = e.ledger_account_id
GROUP BY 1, 2, 3, 4, 5;

-- ---------------------------------------------------------------------------------------------
-- Usage views
-- ---------------------------------------------------------------------------------------------

CREATE VIEW finance.daily_usage AS
SELECT day, account_id, api_key_id, model, provider,
       sum(requests)::bigint AS requests,
       sum(failed_requests)::bigint AS failed_requests,
       sum(cancelled_requests)::bigint AS cancelled_requests,
       sum(streamed_requests)::bigint AS streamed_requests,
       sum(cache_hits)::bigint AS cache_hits,
       sum(charged_requests)::bigint AS charged_requests,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens,
       sum(cached_tokens)::bigint AS cached_tokens,
       sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens,
       (sum(prompt_tokens) + sum(completion_tokens))::bigint AS total_tokens,
       sum(cost) AS cost,
       sum(latency_ms_sum)::bigint AS latency_ms_sum,
       sum(latency_samples)::bigint AS latency_samples
FROM finance.usage_daily
GROUP BY day, account_id, api_key_id, model, provider;
COMMENT ON VIEW finance.daily_usage IS
    'Usage per UTC day (of completion), account, API key, model and provider: request counts, '
    'tokens by kind (cached and cache-write are part of prompt, reasoning part of completion), '
    'cost in USD. Filter on day (and account_id) to use the rollup''s indexes.';

CREATE VIEW finance.daily_usage_by_account AS
SELECT u.day, u.account_id, a.name AS account_name, u.requests, u.failed_requests,
       u.charged_requests, u.prompt_tokens, u.completion_tokens, u.cached_tokens,
       u.cache_write_tokens, u.reasoning_tokens, u.prompt_tokens + u.completion_tokens AS total_tokens,
       u.cost
FROM (SELECT day, account_id,
             sum(requests)::bigint AS requests, sum(failed_requests)::bigint AS failed_requests,
             sum(charged_requests)::bigint AS charged_requests,
             sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
             sum(cached_tokens)::bigint AS cached_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
             sum(reasoning_tokens)::bigint AS reasoning_tokens, sum(cost) AS cost
      FROM finance.usage_daily GROUP BY day, account_id) u
LEFT JOIN public.accounts a ON a.id = u.account_id;
COMMENT ON VIEW finance.daily_usage_by_account IS
    'Usage per UTC day and account, with the account name.';

CREATE VIEW finance.daily_usage_by_key AS
SELECT u.day, u.account_id, u.api_key_id, k.name AS key_name, k.key_hint, u.requests,
       u.failed_requests, u.charged_requests, u.prompt_tokens, u.completion_tokens, u.cached_tokens,
       u.cache_write_tokens, u.reasoning_tokens, u.prompt_tokens + u.completion_tokens AS total_tokens,
       u.cost
FROM (SELECT day, account_id, api_key_id,
             sum(requests)::bigint AS requests, sum(failed_requests)::bigint AS failed_requests,
             sum(charged_requests)::bigint AS charged_requests,
             sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
             sum(cached_tokens)::bigint AS cached_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
             sum(reasoning_tokens)::bigint AS reasoning_tokens, sum(cost) AS cost
      FROM finance.usage_daily GROUP BY day, account_id, api_key_id) u
LEFT JOIN public.api_keys k ON k.id = u.api_key_id;
COMMENT ON VIEW finance.daily_usage_by_key IS
    'Usage per UTC day and API key (name and hint, never the hash).';

CREATE VIEW finance.daily_usage_by_model AS
SELECT day, model,
       sum(requests)::bigint AS requests, sum(failed_requests)::bigint AS failed_requests,
       sum(charged_requests)::bigint AS charged_requests,
       sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
       sum(cached_tokens)::bigint AS cached_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens,
       (sum(prompt_tokens) + sum(completion_tokens))::bigint AS total_tokens,
       sum(cost) AS cost
FROM finance.usage_daily
GROUP BY day, model;
COMMENT ON VIEW finance.daily_usage_by_model IS
    'Usage per UTC day and model (NULL model: requests that failed before a model was resolved). '
    'For the number of tenants, count(DISTINCT account_id) over finance.daily_usage.';

CREATE VIEW finance.daily_usage_by_provider AS
SELECT day, provider,
       sum(requests)::bigint AS requests, sum(failed_requests)::bigint AS failed_requests,
       sum(charged_requests)::bigint AS charged_requests,
       sum(prompt_tokens)::bigint AS prompt_tokens, sum(completion_tokens)::bigint AS completion_tokens,
       sum(cached_tokens)::bigint AS cached_tokens, sum(cache_write_tokens)::bigint AS cache_write_tokens,
       sum(reasoning_tokens)::bigint AS reasoning_tokens,
       (sum(prompt_tokens) + sum(completion_tokens))::bigint AS total_tokens,
       sum(cost) AS cost,
       CASE WHEN sum(latency_samples) > 0
            THEN round(sum(latency_ms_sum)::numeric / sum(latency_samples), 1) END AS avg_latency_ms
FROM finance.usage_daily
GROUP BY day, provider;
COMMENT ON VIEW finance.daily_usage_by_provider IS
    'Usage per UTC day and the provider that answered (NULL: no provider answered), with the mean '
    'end-to-end latency. cost is what tenants were charged for that provider''s answers.';

-- ---------------------------------------------------------------------------------------------
-- Ledger views
-- ---------------------------------------------------------------------------------------------

CREATE VIEW finance.daily_book_movements AS
SELECT d.day, d.ledger_account_id, la.code AS book, la.kind AS book_kind, la.normal_side,
       d.txn_kind, d.account_id,
       sum(d.debits) AS debits, sum(d.credits) AS credits,
       sum(d.debits) - sum(d.credits) AS net_debit,
       CASE la.normal_side WHEN 'debit' THEN sum(d.debits) - sum(d.credits)
                           ELSE sum(d.credits) - sum(d.debits) END AS movement,
       sum(d.entries)::bigint AS entries
FROM finance.ledger_daily d
JOIN public.ledger_accounts la ON la.id = d.ledger_account_id
GROUP BY d.day, d.ledger_account_id, la.code, la.kind, la.normal_side, d.txn_kind, d.account_id;
COMMENT ON VIEW finance.daily_book_movements IS
    'Every book''s movements per UTC day (of effective_at), transaction kind and tenant. net_debit '
    'is debits - credits (the entries'' sign convention); movement is the change on the book''s '
    'normal side (what its balance column moved by).';

CREATE VIEW finance.daily_revenue AS
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
       coalesce(sum(credits) FILTER (WHERE book_kind = 'stripe_clearing'), 0) AS cash_out
FROM finance.ledger_daily
GROUP BY day;
COMMENT ON VIEW finance.daily_revenue IS
    'Platform revenue per UTC day from the platform books. usage_revenue: usage transactions; '
    'usage_revenue_adjustments: other kinds touching usage revenue (reversals); topup_fee_revenue: '
    'fees on top-ups; topup_fee_adjustments: fees given back by refunds/disputes (negative) or '
    'reinstated; expired_credits: breakage from expired credits; net_revenue: all three books net of '
    'refunds and disputes; grants_expense: credits granted for free; cash_in/cash_out: Stripe '
    'clearing debits (payments, reinstatements) and credits (refunds, disputes).';

CREATE VIEW finance.daily_payments AS
SELECT day, account_id,
       coalesce(sum(entries) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'topup'), 0)::bigint AS topups,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'topup'), 0) AS credits_purchased,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind = 'topup'), 0) AS fees_charged,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'stripe_clearing' AND txn_kind = 'topup'), 0) AS cash_collected,
       coalesce(sum(entries) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'refund'), 0)::bigint AS refunds,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'refund'), 0) AS credits_refunded,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind = 'refund'), 0) AS fees_refunded,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'stripe_clearing' AND txn_kind = 'refund'), 0) AS cash_refunded,
       coalesce(sum(entries) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'dispute'), 0)::bigint AS disputes,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'dispute'), 0) AS credits_disputed,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind = 'dispute'), 0) AS fees_disputed,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'stripe_clearing' AND txn_kind = 'dispute'), 0) AS cash_disputed,
       coalesce(sum(entries) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'dispute_reinstated'), 0)::bigint AS reinstatements,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'credits' AND txn_kind = 'dispute_reinstated'), 0) AS credits_reinstated,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'topup_fee_revenue' AND txn_kind = 'dispute_reinstated'), 0) AS fees_reinstated,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'stripe_clearing' AND txn_kind = 'dispute_reinstated'), 0) AS cash_reinstated,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'stripe_clearing'), 0) AS net_cash,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'credits'), 0) AS net_credits
FROM finance.ledger_daily
WHERE txn_kind IN ('topup', 'refund', 'dispute', 'dispute_reinstated')
GROUP BY day, account_id;
COMMENT ON VIEW finance.daily_payments IS
    'Top-ups, refunds and disputes per UTC day and account, from the ledger: counts (entries on the '
    'tenant''s credits book), credits moved, fees, and cash through Stripe clearing. All amounts are '
    'positive in the direction the column names; net_cash and net_credits are signed.';

CREATE VIEW finance.daily_expiries AS
SELECT day, account_id,
       coalesce(sum(entries) FILTER (WHERE book_kind = 'credits'), 0)::bigint AS expiries,
       coalesce(sum(debits - credits) FILTER (WHERE book_kind = 'credits'), 0) AS credits_expired,
       coalesce(sum(credits - debits) FILTER (WHERE book_kind = 'expired_credits'), 0) AS expired_credits_revenue
FROM finance.ledger_daily
WHERE txn_kind = 'expiry'
GROUP BY day, account_id;
COMMENT ON VIEW finance.daily_expiries IS
    'Credits expired per UTC day and account (expiry transactions): taken from the tenant''s '
    'credits book and recognised on platform:expired_credits.';

CREATE VIEW finance.daily_account_activity AS
SELECT a.*,
       sum(a.net_change) OVER w - a.net_change AS opening_balance,
       sum(a.net_change) OVER w AS closing_balance
FROM (SELECT d.day, d.account_id,
             coalesce(sum(d.credits - d.debits) FILTER (WHERE d.txn_kind = 'grant'), 0) AS granted,
             coalesce(sum(d.credits - d.debits) FILTER (WHERE d.txn_kind = 'topup'), 0) AS purchased,
             coalesce(sum(d.debits - d.credits) FILTER (WHERE d.txn_kind = 'usage'), 0) AS used,
             coalesce(sum(d.debits - d.credits) FILTER (WHERE d.txn_kind = 'refund'), 0) AS refunded,
             coalesce(sum(d.debits - d.credits) FILTER (WHERE d.txn_kind = 'dispute'), 0) AS disputed,
             coalesce(sum(d.credits - d.debits) FILTER (WHERE d.txn_kind = 'dispute_reinstated'), 0) AS reinstated,
             coalesce(sum(d.debits - d.credits) FILTER (WHERE d.txn_kind = 'expiry'), 0) AS expired,
             coalesce(sum(d.credits - d.debits) FILTER (WHERE d.txn_kind = 'reversal'), 0) AS reversed,
             sum(d.credits - d.debits) AS net_change
      FROM finance.ledger_daily d
      WHERE d.book_kind = 'credits'
      GROUP BY d.day, d.account_id) a
WINDOW w AS (PARTITION BY a.account_id ORDER BY a.day);
COMMENT ON VIEW finance.daily_account_activity IS
    'A tenant''s daily statement from its credits book: what came in (granted, purchased, '
    'reinstated, reversed) and went out (used, refunded, disputed, expired), with opening and '
    'closing balance. Filter by account_id first: the running balance covers the whole history.';

CREATE VIEW finance.daily_liabilities AS
SELECT day, net_change,
       sum(net_change) OVER (ORDER BY day) - net_change AS opening_liability,
       sum(net_change) OVER (ORDER BY day) AS closing_liability
FROM (SELECT day, sum(credits - debits) AS net_change
      FROM finance.ledger_daily WHERE book_kind = 'credits' GROUP BY day) d;
COMMENT ON VIEW finance.daily_liabilities IS
    'What the platform owes tenants (sum of all credits books) at the end of each UTC day, and its '
    'change that day.';

CREATE VIEW finance.balances AS
SELECT la.account_id, a.name AS account_name, la.code AS book, la.balance,
       coalesce(r.credited, 0) AS total_credited, coalesce(r.debited, 0) AS total_debited,
       coalesce(r.credited - r.debited, 0) AS balance_from_entries,
       la.balance = coalesce(r.credited - r.debited, 0) AS consistent,
       r.last_activity, la.version
FROM public.ledger_accounts la
LEFT JOIN public.accounts a ON a.id = la.account_id
LEFT JOIN (SELECT ledger_account_id, sum(credits) AS credited, sum(debits) AS debited,
                  max(day) AS last_activity
           FROM finance.ledger_daily WHERE book_kind = 'credits' GROUP BY ledger_account_id) r
       ON r.ledger_account_id = la.id
WHERE la.kind = 'credits';
COMMENT ON VIEW finance.balances IS
    'Every tenant''s credits balance (what the platform owes it; negative after refunds or '
    'disputes of spent credits), lifetime credits and debits, and whether the stored balance equals '
    'the sum of its entries.';

CREATE VIEW finance.liabilities AS
SELECT now() AS as_of,
       count(*) AS tenants,
       coalesce(sum(balance), 0) AS total_liability,
       coalesce(sum(balance) FILTER (WHERE balance > 0), 0) AS owed_to_tenants,
       coalesce(-sum(balance) FILTER (WHERE balance < 0), 0) AS owed_by_tenants,
       count(*) FILTER (WHERE balance > 0) AS tenants_in_credit,
       count(*) FILTER (WHERE balance < 0) AS tenants_in_debt
FROM public.ledger_accounts
WHERE kind = 'credits';
COMMENT ON VIEW finance.liabilities IS
    'Outstanding liabilities now: the sum of all tenant credits balances (total_liability = '
    'owed_to_tenants - owed_by_tenants).';

CREATE VIEW finance.platform_books AS
SELECT la.code AS book, la.kind, la.normal_side, la.balance,
       coalesce(CASE la.normal_side WHEN 'debit' THEN r.debits - r.credits
                                    ELSE r.credits - r.debits END, 0) AS balance_from_entries,
       la.balance = coalesce(CASE la.normal_side WHEN 'debit' THEN r.debits - r.credits
                                                 ELSE r.credits - r.debits END, 0) AS consistent
FROM public.ledger_accounts la
LEFT JOIN (SELECT ledger_account_id, sum(debits) AS debits, sum(credits) AS credits
           FROM finance.ledger_daily GROUP BY ledger_account_id) r ON r.ledger_account_id = la.id
WHERE la.account_id IS NULL;
COMMENT ON VIEW finance.platform_books IS
    'The platform''s own books with their balances on the normal side and the balance implied by '
    'their entries.';

CREATE VIEW finance.usage_reconciliation AS
SELECT coalesce(u.day, l.day) AS day, coalesce(u.account_id, l.account_id) AS account_id,
       coalesce(u.charged_requests, 0) AS charged_requests,
       coalesce(l.usage_entries, 0) AS usage_transactions,
       coalesce(u.cost, 0) AS logged_cost,
       coalesce(l.charged, 0) AS ledger_charged,
       coalesce(l.revenue, 0) AS ledger_revenue,
       coalesce(u.cost, 0) - coalesce(l.charged, 0) AS difference
FROM (SELECT day, account_id, sum(charged_requests)::bigint AS charged_requests, sum(cost) AS cost
      FROM finance.usage_daily GROUP BY day, account_id) u
FULL JOIN (SELECT day, account_id,
                  sum(entries) FILTER (WHERE book_kind = 'credits')::bigint AS usage_entries,
                  sum(debits - credits) FILTER (WHERE book_kind = 'credits') AS charged,
                  sum(credits - debits) FILTER (WHERE book_kind = 'usage_revenue') AS revenue
           FROM finance.ledger_daily WHERE txn_kind = 'usage' GROUP BY day, account_id) l
       ON l.day = u.day AND l.account_id = u.account_id;
COMMENT ON VIEW finance.usage_reconciliation IS
    'Per UTC day and account: cost in the request logs against usage charged on the tenant''s '
    'credits book and recognised as usage revenue. difference is non-zero only while settlements '
    'are in flight (a request log and its usage transaction are written in one database '
    'transaction) or if something is wrong.';

-- A tenant's transactions on its credits book with a running balance, for effective days
-- [from_day, to_day]. The opening balance comes from the rollup, so the range is cheap.
CREATE FUNCTION finance.account_statement(account UUID, from_day DATE, to_day DATE)
RETURNS TABLE (effective_at TIMESTAMPTZ, kind TEXT, external_id TEXT, description TEXT,
               transaction_id UUID, amount NUMERIC, balance_after NUMERIC)
LANGUAGE sql STABLE AS $$
    WITH opening AS (
        SELECT coalesce(sum(d.credits - d.debits), 0) AS balance
        FROM finance.ledger_daily d
        JOIN public.ledger_accounts la ON la.id = d.ledger_account_id
        WHERE la.account_id = account AND la.kind = 'credits' AND d.day < from_day
    ), txns AS MATERIALIZED (
        -- Driven by the (account_id, effective_at) index, whatever the tenant's history size.
        SELECT t.id, t.effective_at, t.kind, t.external_id, t.description
        FROM public.ledger_transactions t
        WHERE t.account_id = account
          AND t.effective_at >= (from_day::timestamp AT TIME ZONE 'UTC')
          AND t.effective_at < ((to_day + 1)::timestamp AT TIME ZONE 'UTC')
    ), moves AS (
        SELECT t.effective_at, t.kind, t.external_id, t.description, t.id, -e.amount AS amount, e.id AS entry_id
        FROM txns t
        JOIN public.ledger_entries e ON e.transaction_id = t.id
        JOIN public.ledger_accounts la ON la.id = e.ledger_account_id
                                      AND la.account_id = account AND la.kind = 'credits'
    )
    SELECT m.effective_at, m.kind, m.external_id, m.description, m.id, m.amount,
           (SELECT balance FROM opening) + sum(m.amount) OVER (ORDER BY m.effective_at, m.entry_id)
    FROM moves m
    ORDER BY m.effective_at, m.entry_id
$$;
COMMENT ON FUNCTION finance.account_statement(UUID, DATE, DATE) IS
    'A tenant''s credits-book transactions with effective days from_day..to_day: amount is positive '
    'when the tenant was credited, balance_after is the running balance. Assumes postings for the '
    'tenant carry ledger_transactions.account_id (all of Infron''s do).';

-- Compares the usage rollup with the raw logs for completion days [from_day, to_day]; returns
-- only the groups that differ (none when all is well).
CREATE FUNCTION finance.usage_rollup_drift(from_day DATE, to_day DATE)
RETURNS TABLE (day DATE, account_id UUID, api_key_id UUID, model TEXT, provider TEXT,
               rollup_requests BIGINT, log_requests BIGINT, rollup_cost NUMERIC, log_cost NUMERIC)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(r.day, l.day), coalesce(r.account_id, l.account_id),
           coalesce(r.api_key_id, l.api_key_id), coalesce(r.model, l.model),
           coalesce(r.provider, l.provider),
           coalesce(r.requests, 0), coalesce(l.requests, 0), coalesce(r.cost, 0), coalesce(l.cost, 0)
    FROM (SELECT * FROM finance.daily_usage WHERE daily_usage.day BETWEEN from_day AND to_day) r
    FULL JOIN finance.usage_daily_from_logs(from_day, to_day) l
      ON l.day = r.day AND l.account_id = r.account_id
     AND l.api_key_id IS NOT DISTINCT FROM r.api_key_id
     AND l.model IS NOT DISTINCT FROM r.model AND l.provider IS NOT DISTINCT FROM r.provider
     -- Everything else must match too: any difference leaves both sides unmatched.
     AND l.requests = r.requests AND l.failed_requests = r.failed_requests
     AND l.cancelled_requests = r.cancelled_requests AND l.streamed_requests = r.streamed_requests
     AND l.cache_hits = r.cache_hits AND l.charged_requests = r.charged_requests
     AND l.prompt_tokens = r.prompt_tokens AND l.completion_tokens = r.completion_tokens
     AND l.cached_tokens = r.cached_tokens AND l.cache_write_tokens = r.cache_write_tokens
     AND l.reasoning_tokens = r.reasoning_tokens AND l.cost = r.cost
     AND l.latency_ms_sum = r.latency_ms_sum AND l.latency_samples = r.latency_samples
    WHERE r.day IS NULL OR l.day IS NULL
$$;
COMMENT ON FUNCTION finance.usage_rollup_drift(DATE, DATE) IS
    'Groups where finance.usage_daily differs from request_logs for completion days '
    'from_day..to_day; empty when the rollup is exact. A differing group appears twice (rollup side '
    'and log side).';

-- ---------------------------------------------------------------------------------------------
-- The read-only finance role
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON FUNCTION finance.compact_rollups(DATE) FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.rebuild_usage_daily(DATE, DATE) FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.rebuild_ledger_daily(DATE, DATE) FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.usage_daily_capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION finance.ledger_daily_capture() FROM PUBLIC;

-- Roles are cluster-wide and many databases (tests, staging) may migrate on one server at once,
-- so the role is created only if missing and a concurrent creation is tolerated. Where the
-- migrating user may not create roles (some managed Postgres), the grants are skipped with a
-- warning; re-run them as docs/finance.md shows once an administrator has created the role.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'infron_finance') THEN
        BEGIN
            CREATE ROLE infron_finance NOLOGIN;
            COMMENT ON ROLE infron_finance IS
                'Infron finance: read-only access to the finance schema and the ledger and usage tables.';
        EXCEPTION
            WHEN duplicate_object OR unique_violation THEN
                NULL; -- created meanwhile by another database's migration
            WHEN insufficient_privilege THEN
                RAISE WARNING 'cannot create role infron_finance (%); finance grants skipped', SQLERRM;
                RETURN;
        END;
    END IF;
    GRANT USAGE ON SCHEMA finance, public TO infron_finance;
    GRANT SELECT ON ALL TABLES IN SCHEMA finance TO infron_finance;
    GRANT EXECUTE ON FUNCTION finance.usage_daily_from_logs(DATE, DATE),
                              finance.ledger_daily_from_entries(DATE, DATE),
                              finance.account_statement(UUID, DATE, DATE),
                              finance.usage_rollup_drift(DATE, DATE) TO infron_finance;
    GRANT SELECT ON public.accounts, public.ledger_accounts, public.ledger_transactions,
                    public.ledger_entries, public.request_logs TO infron_finance;
    -- API keys without their hashes.
    GRANT SELECT (id, account_id, name, key_hint, disabled, credit_limit, limit_reset, expires_at,
                  created_at) ON public.api_keys TO infron_finance;
    -- Views and rollups added to the finance schema later by the migrating user are readable too.
    ALTER DEFAULT PRIVILEGES IN SCHEMA finance GRANT SELECT ON TABLES TO infron_finance;
END $$;
