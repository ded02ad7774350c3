#!/usr/bin/env bash
# Request-log and finance-view benchmark at scale (docs/finance.md, issue 5 "Finance").
#
# Creates a scratch database, applies Infron's migrations with `infron migrate`, generates
# ROWS request_logs rows over one calendar month (plus PREV_SHARE percent more in the month
# before, so partition pruning has something to prune) by set-based INSERT ... SELECT
# generate_series straight into the partitioned table, one statement per day, with usage ledger
# transactions for a sample of accounts plus grants, top-ups, refunds, disputes and expiries;
# then times the finance views, the raw-log alternatives they replace and the per-account
# activity queries with EXPLAIN (ANALYZE, BUFFERS), measures the write-path cost of the rollup
# triggers, and writes everything to RESULTS.md next to this script. Drops the database at the
# end (KEEP_DB=1 keeps it).
#
# Usage: bench/request_logs/run.sh            # 5 million rows, ~10 minutes on 2 cores
#        ROWS=30000000 bench/request_logs/run.sh
#
# Needs psql and a Postgres superuser (PGHOST/PGPORT/PGUSER, default postgres@127.0.0.1:5432),
# and the infron binary ($CARGO_TARGET_DIR/debug/infron, else built with cargo).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROWS=${ROWS:-5000000}
ACCOUNTS=${ACCOUNTS:-2000}
KEYS_PER_ACCOUNT=${KEYS_PER_ACCOUNT:-3}
MODELS=${MODELS:-24}
PROVIDERS=${PROVIDERS:-6}
PREV_SHARE=${PREV_SHARE:-10}          # percent of ROWS added to the month before
LEDGER_SAMPLE=${LEDGER_SAMPLE:-5}     # percent of accounts whose requests also get ledger rows
WRITER_BATCHES=${WRITER_BATCHES:-200} # 500-row inserts for the write-path overhead test
LEDGER_POSTINGS=${LEDGER_POSTINGS:-5000}
WORK_MEM=${WORK_MEM:-64MB}            # for every session of the benchmark (PGOPTIONS)
OUT=${OUT:-bench/request_logs/RESULTS.md}
export PGOPTIONS="${PGOPTIONS:--c work_mem=$WORK_MEM}" PGTZ=UTC PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
DB=${BENCH_DB:-infron_bench_$(date +%s)}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
psqlq() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

cleanup() {
  if [ "${KEEP_DB:-0}" != 1 ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

BIN="$CARGO_TARGET_DIR/debug/infron"
if [ ! -x "$BIN" ]; then
  log "building infron"
  cargo build --quiet -p infron-api --bin infron
fi

T_START=$(now)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "creating $DB and migrating"
psql -X -q -d postgres -c "CREATE DATABASE \"$DB\""
DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB" REDIS_URL=redis://127.0.0.1:6379 \
  INFRON_KEY_SECRET=bench-key-secret-not-used-for-anything-000 "$BIN" migrate >/dev/null
# The binary embeds the migrations it was built with. If they are not the files in migrations/
# (a binary older than the tree), apply the files the way `infron migrate` does instead: each in
# its own transaction, in version order, then the request-log partitions.
want=$(for f in migrations/*.sql; do printf '%s %s\n' "$(basename "$f" | cut -d_ -f1)" "$(sha384sum "$f" | cut -d' ' -f1)"; done)
have=$(psqlq -c "SELECT version || ' ' || encode(checksum, 'hex') FROM _sqlx_migrations ORDER BY version")
MIGRATED_WITH="\`infron migrate\`"
if [ "$want" != "$have" ]; then
  log "the infron binary's embedded migrations differ from migrations/*.sql: applying the files with psql"
  psql -X -q -d postgres -c "DROP DATABASE \"$DB\"" -c "CREATE DATABASE \"$DB\""
  for f in migrations/*.sql; do psqlq -1 -f "$f" >/dev/null; done
  psqlq -c "SELECT infron_ensure_request_log_partitions(2)" >/dev/null
  MIGRATED_WITH="psql, file by file in version order, each in one transaction (the infron binary at hand was older than migrations/)"
fi

MONTH=$(psqlq -c "SELECT (date_trunc('month', now()) - interval '1 month')::date")
NEXT=$(psqlq -c "SELECT ('$MONTH'::date + interval '1 month')::date")
PREV=$(psqlq -c "SELECT ('$MONTH'::date - interval '1 month')::date")
DAYS=$(psqlq -c "SELECT '$NEXT'::date - '$MONTH'::date")
PREV_DAYS=$(psqlq -c "SELECT '$MONTH'::date - '$PREV'::date")
CUR=$(psqlq -c "SELECT date_trunc('month', now())::date")
log "month $MONTH ($DAYS days), previous $PREV; $ROWS rows"

# ---------------------------------------------------------------------------------------------
# Schema additions for the generator (scratch database only)
# ---------------------------------------------------------------------------------------------
psqlq <<SQL
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
              'request_logs_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date)
FROM (VALUES ('$PREV'::date), ('$MONTH'::date)) v(m) \gexec

-- UUIDv7-like ids (time-ordered, as the gateway's Uuid::now_v7) from a timestamp.
CREATE FUNCTION bench_uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS \$\$
    SELECT (substr(lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0'), 1, 8) || '-' ||
            substr(lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0'), 9, 4) || '-7' ||
            substr(gen_random_uuid()::text, 16))::uuid
\$\$;

CREATE TABLE bench_accounts (n int PRIMARY KEY, id uuid NOT NULL, book uuid NOT NULL, sampled boolean NOT NULL);
INSERT INTO bench_accounts
-- The sample skips the heaviest accounts (lowest n) so that it is a typical slice.
SELECT n, bench_uuid7('$PREV'::timestamptz + n * interval '1 second'), gen_random_uuid(),
       (n % 100) BETWEEN 3 AND 2 + $LEDGER_SAMPLE
FROM generate_series(0, $ACCOUNTS - 1) n;
INSERT INTO accounts (id, name, created_at) SELECT id, 'tenant ' || n, '$PREV'::timestamptz FROM bench_accounts;
INSERT INTO ledger_accounts (id, code, kind, account_id, normal_side)
SELECT book, 'tenant:' || id || ':credits', 'credits', id, 'credit' FROM bench_accounts;

CREATE TABLE bench_models (m int PRIMARY KEY, prices jsonb NOT NULL);
INSERT INTO bench_models
SELECT m, jsonb_build_object('prompt', ((m + 1) * 0.0000001)::text, 'completion', ((m + 1) * 0.0000004)::text,
                             'input_cache_read', ((m + 1) * 0.00000005)::text)
FROM generate_series(0, $MODELS - 1) m;

CREATE TABLE bench_keys (n int, k int, id uuid, PRIMARY KEY (n, k));
INSERT INTO bench_keys SELECT n, k, gen_random_uuid() FROM bench_accounts, generate_series(0, $KEYS_PER_ACCOUNT - 1) k;
INSERT INTO api_keys (id, account_id, name, key_hash, key_hint)
SELECT k.id, a.id, 'key ' || k.k, decode(md5(k.id::text), 'hex') || decode(md5(k.id::text || 'x'), 'hex'), 'sk-inf-...' || k.k
FROM bench_keys k JOIN bench_accounts a USING (n);

-- One day of synthetic traffic: skewed accounts (a few big tenants, a long tail), a skewed model
-- mix, tokens, exact per-token costs, 5% failures, realistic JSON metadata.
CREATE FUNCTION bench_day(day_start timestamptz, n_rows int) RETURNS void LANGUAGE sql AS \$\$
INSERT INTO request_logs (id, created_at, account_id, api_key_id, requested_model, model, provider,
    upstream_model, endpoint_kind, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens,
    reasoning_tokens, cost, cost_details, prices, usage_source, status, error_class, finish_reason,
    streamed, cancelled, cache_hit, attempts, latency_ms, first_token_ms, completed_at)
SELECT (substr(g.h, 1, 8) || '-' || substr(g.h, 9, 4) || '-7' || substr(gen_random_uuid()::text, 16))::uuid,
       g.created_at, a.id, k.id, 'vendor/model-' || g.m,
       CASE WHEN g.status = 400 THEN NULL ELSE 'vendor/model-' || g.m END,
       CASE WHEN g.status = 200 THEN 'provider-' || g.p END,
       CASE WHEN g.status = 200 THEN 'upstream-' || g.m END,
       'chat', g.pt, g.ct, g.cached, 0, g.reasoning, g.cost,
       CASE WHEN g.status = 200 THEN jsonb_build_object('prompt', (g.pt - g.cached) * g.pp,
            'completion', g.ct * g.pc, 'cache_read', g.cached * g.pp / 2, 'cache_write', 0,
            'reasoning', 0, 'request', 0, 'image', 0, 'discount', 0, 'total', g.cost) END,
       CASE WHEN g.status <> 400 THEN bm.prices END,
       CASE WHEN g.status = 200 THEN 'provider' END,
       g.status::smallint,
       CASE g.status WHEN 200 THEN NULL WHEN 502 THEN 'upstream' WHEN 429 THEN 'rate_limited' ELSE 'invalid_request' END,
       CASE WHEN g.status = 200 THEN 'stop' END,
       g.streamed, g.cancelled, false,
       CASE WHEN g.status = 400 THEN '[]'::jsonb
            ELSE jsonb_build_array(jsonb_build_object('provider', 'provider-' || g.p, 'status', g.status,
                                                      'latency_ms', g.latency)) END,
       g.latency, CASE WHEN g.streamed THEN g.latency / 4 END,
       g.created_at + g.latency * interval '1 millisecond'
FROM (
    SELECT x.*,
           CASE WHEN x.status = 200 THEN (x.pt - x.cached) * x.pp + x.cached * x.pp / 2 + x.ct * x.pc ELSE 0 END AS cost
    FROM (
        SELECT r1.*,
               CASE WHEN r1.status = 200 THEN r1.pt0 ELSE 0 END AS pt,
               CASE WHEN r1.status = 200 THEN r1.ct0 ELSE 0 END AS ct,
               CASE WHEN r1.status = 200 AND r1.cr < 0.3 THEN r1.pt0 / 2 ELSE 0 END AS cached,
               CASE WHEN r1.status = 200 AND r1.m % 5 = 0 THEN r1.ct0 / 3 ELSE 0 END AS reasoning
        FROM (
            SELECT r0.*, lpad(to_hex((extract(epoch FROM r0.created_at) * 1000)::bigint), 12, '0') AS h,
                   (m.m + 1) * 0.0000001 AS pp, (m.m + 1) * 0.0000004 AS pc, m.m,
                   (m.m + (r0.pr < 0.3)::int) % $PROVIDERS AS p,
                   CASE WHEN r0.s < 0.95 THEN 200 WHEN r0.s < 0.97 THEN 502
                        WHEN r0.s < 0.99 THEN 429 ELSE 400 END AS status
            FROM (
                -- OFFSET 0 keeps this level a separate subquery scan, so every random() is drawn
                -- once per row however often the levels above refer to it.
                SELECT day_start + (i + random()) * (interval '1 day' / n_rows) AS created_at,
                       floor($ACCOUNTS * power(random(), 3))::int AS n,
                       floor($KEYS_PER_ACCOUNT * power(random(), 2))::int AS k,
                       random() AS mr,
                       random() AS pr, random() AS cr, random() AS s,
                       1 + floor(4000 * power(random(), 2))::bigint AS pt0,
                       1 + floor(1000 * power(random(), 2))::bigint AS ct0,
                       random() < 0.6 AS streamed, random() < 0.01 AS cancelled,
                       200 + floor(20000 * power(random(), 2))::int AS latency
                FROM generate_series(0, n_rows - 1) i
                OFFSET 0
            ) r0
            -- Each tenant mostly uses its own favourite model and a few others; favourites
            -- follow a skewed popularity across the catalog.
            CROSS JOIN LATERAL (SELECT ((floor($MODELS * power(((r0.n * 7919) % 1000) / 1000.0, 2))::int
                                         + floor(4 * power(r0.mr, 3))::int) % $MODELS) AS m) m
            OFFSET 0
        ) r1
        OFFSET 0
    ) x
    OFFSET 0
) g
JOIN bench_accounts a ON a.n = g.n
JOIN bench_keys k ON k.n = g.n AND k.k = g.k
JOIN bench_models bm ON bm.m = g.m
\$\$;

-- Usage ledger transactions (as the ledger writer posts them) for the sampled accounts' charged
-- requests completed on one day. The transaction id reuses the request id (bench only).
CREATE FUNCTION bench_ledger_day(d date) RETURNS void LANGUAGE sql AS \$\$
INSERT INTO ledger_transactions (id, external_id, kind, account_id, description, metadata, effective_at, created_at)
SELECT r.id, 'request:' || r.id, 'usage', r.account_id, r.model || ' via ' || r.provider,
       jsonb_build_object('request_id', r.id, 'api_key_id', r.api_key_id), r.completed_at, r.completed_at
FROM request_logs r JOIN bench_accounts a ON a.id = r.account_id AND a.sampled
WHERE r.cost <> 0
  AND r.created_at >= ((d - 1)::timestamp AT TIME ZONE 'UTC') AND r.created_at < ((d + 1)::timestamp AT TIME ZONE 'UTC')
  AND r.completed_at >= (d::timestamp AT TIME ZONE 'UTC') AND r.completed_at < ((d + 1)::timestamp AT TIME ZONE 'UTC')
ORDER BY r.completed_at;
INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount, created_at)
SELECT r.id, b.book, b.amount, r.completed_at
FROM request_logs r JOIN bench_accounts a ON a.id = r.account_id AND a.sampled
CROSS JOIN LATERAL (VALUES (a.book, r.cost), ('00000000-0000-0000-0000-000000000002'::uuid, -r.cost)) b(book, amount)
WHERE r.cost <> 0
  AND r.created_at >= ((d - 1)::timestamp AT TIME ZONE 'UTC') AND r.created_at < ((d + 1)::timestamp AT TIME ZONE 'UTC')
  AND r.completed_at >= (d::timestamp AT TIME ZONE 'UTC') AND r.completed_at < ((d + 1)::timestamp AT TIME ZONE 'UTC')
ORDER BY r.completed_at;
\$\$;

-- A non-usage transaction: kind, external id, tenant, time, and (book, amount) pairs.
CREATE FUNCTION bench_post(kind text, ext text, account uuid, at timestamptz, books uuid[], amounts numeric[])
RETURNS void LANGUAGE sql AS \$\$
INSERT INTO ledger_transactions (id, external_id, kind, account_id, effective_at, created_at)
VALUES (bench_uuid7(at), ext, kind, account, at, at);
INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount, created_at)
SELECT (SELECT id FROM ledger_transactions WHERE external_id = ext), b, a, at FROM unnest(books, amounts) u(b, a);
\$\$;
SQL

# ---------------------------------------------------------------------------------------------
# Load
# ---------------------------------------------------------------------------------------------
log "money in: grants, top-ups, refunds, disputes, expiries"
T=$(now)
psqlq >/dev/null <<SQL
SELECT bench_post('grant', 'grant:bench-' || n, id, '$PREV'::timestamptz + interval '1 hour',
                  ARRAY['00000000-0000-0000-0000-000000000005'::uuid, book], ARRAY[5000, -5000]::numeric[])
FROM bench_accounts;
-- A fifth of the tenants buy credits once (amount + \$0.35 + 5% fee, paid on top).
SELECT bench_post('topup', 'topup:cs_bench_' || n, id, '$MONTH'::timestamptz + (n % $DAYS) * interval '1 day' + interval '9 hours',
                  ARRAY['00000000-0000-0000-0000-000000000001'::uuid, book, '00000000-0000-0000-0000-000000000003'::uuid],
                  ARRAY[c + f, -c, -f])
FROM (SELECT n, id, book, c, round(0.35 + c * 0.05, 2) AS f
      FROM (SELECT n, id, book, (10 + (n % 50) * 10)::numeric AS c FROM bench_accounts WHERE n % 5 = 0) a) t;
SELECT bench_post('refund', 'refund:ch_bench_' || n || ':1000', id, '$MONTH'::timestamptz + (n % $DAYS) * interval '1 day' + interval '15 hours',
                  ARRAY[book, '00000000-0000-0000-0000-000000000001'::uuid], ARRAY[10, -10]::numeric[])
FROM bench_accounts WHERE n % 100 = 0;
SELECT bench_post('dispute', 'dispute:dp_bench_' || n || ':withdrawn', id, '$MONTH'::timestamptz + (n % $DAYS) * interval '1 day' + interval '16 hours',
                  ARRAY[book, '00000000-0000-0000-0000-000000000001'::uuid], ARRAY[10, -10]::numeric[])
FROM bench_accounts WHERE n % 250 = 5;
SELECT bench_post('expiry', 'expiry:bench-' || n, id, '$MONTH'::timestamptz + (n % $DAYS) * interval '1 day' + interval '2 hours',
                  ARRAY[book, '00000000-0000-0000-0000-000000000004'::uuid], ARRAY[1, -1]::numeric[])
FROM bench_accounts WHERE n % 40 = 7;
SQL
T_MONEY=$(elapsed "$T")

log "request_logs: $PREV_DAYS days of the previous month"
PREV_ROWS=$((ROWS * PREV_SHARE / 100))
T=$(now)
for ((d = 0; d < PREV_DAYS; d++)); do
  psqlq -c "SELECT bench_day('$PREV'::timestamptz + $d * interval '1 day', $((PREV_ROWS / PREV_DAYS)))" >/dev/null
done
T_PREV=$(elapsed "$T")

log "request_logs: $DAYS days of $MONTH"
T=$(now)
for ((d = 0; d < DAYS; d++)); do
  psqlq -c "SELECT bench_day('$MONTH'::timestamptz + $d * interval '1 day', $((ROWS / DAYS)))" >/dev/null
  if [ $((d % 5)) = 4 ]; then log "  day $((d + 1))/$DAYS"; fi
done
T_LOAD=$(elapsed "$T")

log "usage ledger transactions for the sampled accounts"
# Row triggers of other billing projections (credit lots, key usage) are switched off for this
# bulk load: they are not what is measured here, and per-row projection of hundreds of thousands
# of entries in one statement is slow (the write-path test below keeps every trigger on).
OTHER_TRIGGERS=$(psqlq -c "SELECT string_agg(tgname, ' ') FROM pg_trigger WHERE tgrelid = 'ledger_entries'::regclass
                             AND NOT tgisinternal AND tgname NOT LIKE 'finance_%' AND tgname <> 'ledger_entries_balanced'
                             AND tgtype & 4 = 4 AND tgtype & 1 = 1")
for t in $OTHER_TRIGGERS; do psqlq -c "ALTER TABLE ledger_entries DISABLE TRIGGER $t"; done
T=$(now)
for ((d = -1; d <= DAYS; d++)); do
  psqlq -c "SELECT bench_ledger_day('$MONTH'::date + $d)" >/dev/null
done
# Book balances as posting would have left them.
psqlq -c "UPDATE ledger_accounts la SET balance = s.bal, version = s.n
          FROM (SELECT e.ledger_account_id, sum(CASE l.normal_side WHEN 'debit' THEN e.amount ELSE -e.amount END) bal, count(*) n
                FROM ledger_entries e JOIN ledger_accounts l ON l.id = e.ledger_account_id GROUP BY 1) s
          WHERE s.ledger_account_id = la.id" >/dev/null
T_LEDGER=$(elapsed "$T")
for t in $OTHER_TRIGGERS; do psqlq -c "ALTER TABLE ledger_entries ENABLE TRIGGER $t"; done

ROLLUP_ROWS_BEFORE=$(psqlq -c "SELECT (SELECT count(*) FROM finance.usage_daily) || ' / ' || (SELECT count(*) FROM finance.ledger_daily)")
log "compacting rollups"
T=$(now)
psqlq -c "SELECT * FROM finance.compact_rollups('-infinity')" >/dev/null
T_COMPACT=$(elapsed "$T")
ROLLUP_ROWS_AFTER=$(psqlq -c "SELECT (SELECT count(*) FROM finance.usage_daily) || ' / ' || (SELECT count(*) FROM finance.ledger_daily)")

log "VACUUM ANALYZE"
T=$(now)
psqlq -c "VACUUM ANALYZE"
T_VACUUM=$(elapsed "$T")

# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------
BIG=$(psqlq -c "SELECT account_id FROM finance.daily_usage_by_account WHERE day >= '$MONTH' AND day < '$NEXT' GROUP BY 1 ORDER BY sum(requests) DESC LIMIT 1")
MID=$(psqlq -c "SELECT account_id FROM (SELECT account_id, sum(requests) r FROM finance.daily_usage_by_account WHERE day >= '$MONTH' AND day < '$NEXT' GROUP BY 1) s ORDER BY r LIMIT 1 OFFSET (SELECT count(DISTINCT account_id) / 2 FROM finance.usage_daily)")
SAMPLED=$(psqlq -c "SELECT a.id FROM bench_accounts a WHERE a.sampled ORDER BY a.n LIMIT 1")
BIG_KEY=$(psqlq -c "SELECT api_key_id FROM finance.daily_usage WHERE account_id = '$BIG' GROUP BY 1 ORDER BY sum(requests) DESC LIMIT 1")
SOME_ID=$(psqlq -c "SELECT id FROM request_logs_$(echo "$MONTH" | cut -c1-7 | tr - _) WHERE account_id = '$MID' LIMIT 1")
DAY15=$(psqlq -c "SELECT '$MONTH'::date + 14")
BIG_REQ=$(psqlq -c "SELECT sum(requests) FROM finance.daily_usage WHERE account_id = '$BIG' AND day >= '$MONTH' AND day < '$NEXT'")
MID_REQ=$(psqlq -c "SELECT sum(requests) FROM finance.daily_usage WHERE account_id = '$MID' AND day >= '$MONTH' AND day < '$NEXT'")

declare -a Q_NAME Q_SQL
addq() { Q_NAME+=("$1"); Q_SQL+=("$2"); }
M="day >= '$MONTH' AND day < '$NEXT'"
MR="created_at >= '$MONTH' AND created_at < '$NEXT'"
addq "F1 daily usage by account, whole month (finance.daily_usage_by_account)" \
  "SELECT * FROM finance.daily_usage_by_account WHERE $M"
addq "F2 top 20 customers of the month" \
  "SELECT account_id, account_name, sum(cost) AS cost, sum(requests) AS requests FROM finance.daily_usage_by_account WHERE $M GROUP BY 1, 2 ORDER BY cost DESC LIMIT 20"
addq "F3 daily usage by model, month" "SELECT * FROM finance.daily_usage_by_model WHERE $M"
addq "F4 daily usage by provider, month" "SELECT * FROM finance.daily_usage_by_provider WHERE $M"
addq "F5 daily usage by key of the biggest account, month" \
  "SELECT * FROM finance.daily_usage_by_key WHERE account_id = '$BIG' AND $M"
addq "F6 daily revenue, month" "SELECT * FROM finance.daily_revenue WHERE $M ORDER BY day"
addq "F7 top-ups, refunds and disputes per day and account, month" "SELECT * FROM finance.daily_payments WHERE $M"
addq "F8 expiries, month" "SELECT * FROM finance.daily_expiries WHERE $M"
addq "F9 liabilities now" "SELECT * FROM finance.liabilities"
addq "F10 all tenant balances with entry check" "SELECT * FROM finance.balances"
addq "F11 liabilities per day" "SELECT * FROM finance.daily_liabilities WHERE $M"
addq "F12 a sampled tenant's daily statement" "SELECT * FROM finance.daily_account_activity WHERE account_id = '$SAMPLED'"
addq "F13 a sampled tenant's transactions on one day" "SELECT * FROM finance.account_statement('$SAMPLED', '$DAY15', '$DAY15')"
addq "F14 usage vs ledger reconciliation, month" "SELECT * FROM finance.usage_reconciliation WHERE $M AND difference <> 0 AND account_id IN (SELECT id FROM bench_accounts WHERE sampled)"
addq "F15 platform books with entry check" "SELECT * FROM finance.platform_books"
addq "R1 RAW: daily usage by account for the month from request_logs (what F1 replaces)" \
  "SELECT (completed_at AT TIME ZONE 'UTC')::date AS day, account_id, count(*), sum(prompt_tokens), sum(completion_tokens), sum(cost) FROM request_logs WHERE $MR GROUP BY 1, 2"
addq "R2 RAW: one day recomputed from request_logs (finance.usage_daily_from_logs, BRIN + pruning)" \
  "SELECT * FROM finance.usage_daily_from_logs('$DAY15', '$DAY15')"
addq "R3 rollup drift check for one day (rollup vs raw)" \
  "SELECT * FROM finance.usage_rollup_drift('$DAY15', '$DAY15')"
addq "R4 RAW: daily revenue for the month from ledger_entries (what F6 replaces)" \
  "SELECT (t.effective_at AT TIME ZONE 'UTC')::date, sum(-e.amount) FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id WHERE e.ledger_account_id = '00000000-0000-0000-0000-000000000002' AND t.effective_at >= '$MONTH' AND t.effective_at < '$NEXT' GROUP BY 1"
addq "A1 activity: biggest account ($BIG_REQ requests) last 30 days by day and model, RAW" \
  "SELECT date_trunc('day', created_at) AS day, model, count(*), sum(prompt_tokens + completion_tokens), sum(cost) FROM request_logs WHERE account_id = '$BIG' AND created_at >= '$NEXT'::timestamptz - interval '30 days' AND created_at < '$NEXT' GROUP BY 1, 2"
addq "A2 activity: same from the rollup (finance.daily_usage)" \
  "SELECT day, model, sum(requests), sum(total_tokens), sum(cost) FROM finance.daily_usage WHERE account_id = '$BIG' AND day >= '$NEXT'::date - 30 AND day < '$NEXT' GROUP BY 1, 2"
addq "A3 activity: median account ($MID_REQ requests) last 30 days by day and model, RAW" \
  "SELECT date_trunc('day', created_at) AS day, model, count(*), sum(prompt_tokens + completion_tokens), sum(cost) FROM request_logs WHERE account_id = '$MID' AND created_at >= '$NEXT'::timestamptz - interval '30 days' AND created_at < '$NEXT' GROUP BY 1, 2"
addq "A4 activity: biggest account's latest 50 requests" \
  "SELECT id, created_at, model, provider, prompt_tokens, completion_tokens, cost, status FROM request_logs WHERE account_id = '$BIG' AND created_at < '$NEXT' ORDER BY created_at DESC LIMIT 50"
addq "A5 activity: one key's spend this month (key limit style), RAW" \
  "SELECT count(*), sum(cost) FROM request_logs WHERE api_key_id = '$BIG_KEY' AND $MR"
addq "A6 generation lookup by id (no time bound: probes every partition's primary key)" \
  "SELECT * FROM request_logs WHERE id = '$SOME_ID' AND account_id = '$MID'"

PLANS=$(mktemp)
SUMMARY=$(mktemp)
run_query() { # name sql
  local name=$1 sql=$2 first second rows plan
  first=$(psqlq -c "SET work_mem = '$WORK_MEM'" -c "EXPLAIN (ANALYZE, BUFFERS) $sql" | sed -n 's/^Execution Time: \(.*\) ms$/\1/p')
  plan=$(psqlq -c "SET work_mem = '$WORK_MEM'" -c "EXPLAIN (ANALYZE, BUFFERS) $sql")
  second=$(sed -n 's/^Execution Time: \(.*\) ms$/\1/p' <<<"$plan")
  rows=$(head -1 <<<"$plan" | sed -n 's/.*actual time=[^ ]* rows=\([0-9]*\).*/\1/p')
  local bufs
  bufs=$(grep -m1 'Buffers:' <<<"$plan" | sed 's/^ *Buffers: //')
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$first" "$second" "${rows:-?}" "${bufs:-}" >>"$SUMMARY"
  {
    printf '<details><summary>%s</summary>\n\n```sql\n%s\n```\n\n```\n%s\n```\n</details>\n\n' "$name" "$sql" "$plan"
  } >>"$PLANS"
}
log "timing ${#Q_NAME[@]} queries"
for i in "${!Q_NAME[@]}"; do
  run_query "${Q_NAME[$i]}" "${Q_SQL[$i]}"
done

# ---------------------------------------------------------------------------------------------
# Write-path cost of the capture triggers, gateway-shaped: many small statements.
# ---------------------------------------------------------------------------------------------
log "write path: $WRITER_BATCHES x 500-row request_logs inserts, with and without the rollup trigger"
BATCH_DAY=$(psqlq -c "SELECT '$CUR'::date + 1")
writer_batches() { # first-day-offset
  for ((b = 0; b < WRITER_BATCHES; b++)); do
    echo "SELECT bench_day('$BATCH_DAY'::timestamptz + $1 * interval '1 day' + $b * interval '1 minute', 500);"
  done | psqlq >/dev/null
}
T=$(now); writer_batches 0; T_WITH=$(elapsed "$T")
psqlq -c "ALTER TABLE request_logs DISABLE TRIGGER finance_usage_daily_capture"
T=$(now); writer_batches 1; T_WITHOUT=$(elapsed "$T")
psqlq -c "ALTER TABLE request_logs ENABLE TRIGGER finance_usage_daily_capture"
T=$(now); psqlq -c "SELECT finance.rebuild_usage_daily('$BATCH_DAY'::date + 1, '$BATCH_DAY'::date + 2)" >/dev/null; T_REBUILD=$(elapsed "$T")
DRIFT=$(psqlq -c "SELECT count(*) FROM finance.usage_rollup_drift('$BATCH_DAY'::date, '$BATCH_DAY'::date + 2)")

log "write path: $LEDGER_POSTINGS usage postings, one statement per transaction, 500 per commit"
ledger_postings() { # tag
  for ((b = 0; b < LEDGER_POSTINGS; b += 500)); do
    echo "BEGIN;"
    for ((j = b; j < b + 500 && j < LEDGER_POSTINGS; j++)); do
      echo "INSERT INTO ledger_transactions (id, external_id, kind, account_id, effective_at) SELECT bench_uuid7(now()), 'bench:$1:$j', 'usage', id, now() FROM bench_accounts WHERE n = $((j % 97 + 3));"
      echo "INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount) SELECT t.id, b, a FROM ledger_transactions t, (SELECT book FROM bench_accounts WHERE n = $((j % 97 + 3))) k, LATERAL (VALUES (k.book, 0.000123::numeric), ('00000000-0000-0000-0000-000000000002'::uuid, -0.000123)) v(b, a) WHERE t.external_id = 'bench:$1:$j';"
    done
    echo "COMMIT;"
  done | psqlq >/dev/null
}
T=$(now); ledger_postings with; T_L_WITH=$(elapsed "$T")
psqlq -c "ALTER TABLE ledger_entries DISABLE TRIGGER finance_ledger_daily_capture"
T=$(now); ledger_postings without; T_L_WITHOUT=$(elapsed "$T")
psqlq -c "ALTER TABLE ledger_entries ENABLE TRIGGER finance_ledger_daily_capture"
PENDING=$(psqlq -c "SELECT count(*) FROM finance.ledger_daily WHERE day >= '$CUR'")
REV_UNCOMPACTED=$(psqlq -c "EXPLAIN (ANALYZE) SELECT * FROM finance.daily_revenue WHERE day >= '$CUR'" | sed -n 's/^Execution Time: \(.*\) ms$/\1/p')
T=$(now); COMPACTED=$(psqlq -c "SELECT string_agg(rollup || ': ' || rows_merged || ' -> ' || rows_written, ', ') FROM finance.compact_rollups('$CUR')"); T_COMPACT2=$(elapsed "$T")
REV_COMPACTED=$(psqlq -c "EXPLAIN (ANALYZE) SELECT * FROM finance.daily_revenue WHERE day >= '$CUR'" | sed -n 's/^Execution Time: \(.*\) ms$/\1/p')
psqlq -c "SELECT finance.rebuild_ledger_daily('$CUR'::date, '$CUR'::date + 40)" >/dev/null

log "ledger verify query (store::ledger::verify) for reference"
T=$(now)
psqlq -c "SET work_mem = '$WORK_MEM'" -c "SET statement_timeout = '10min'" -c "SELECT
  (SELECT count(*) FROM (SELECT transaction_id FROM ledger_entries GROUP BY transaction_id HAVING sum(amount) <> 0) u),
  (SELECT count(*) FROM ledger_accounts la WHERE la.balance <> (SELECT coalesce(sum(CASE la.normal_side WHEN 'debit' THEN e.amount ELSE -e.amount END), 0) FROM ledger_entries e WHERE e.ledger_account_id = la.id)),
  (SELECT count(*) FROM request_logs r WHERE r.cost > 0 AND NOT EXISTS (SELECT 1 FROM ledger_transactions t WHERE t.external_id = 'request:' || r.id::text)),
  (SELECT count(*) FROM ledger_transactions t WHERE t.kind = 'usage' AND NOT EXISTS (SELECT 1 FROM request_logs r WHERE 'request:' || r.id::text = t.external_id AND r.cost > 0))" >/dev/null 2>&1 \
  && T_VERIFY="$(elapsed "$T") s" || T_VERIFY="did not finish in 10 min"

# ---------------------------------------------------------------------------------------------
# Sizes and report
# ---------------------------------------------------------------------------------------------
SIZES=$(psqlq -F ' | ' <<SQL
SELECT '| ' || c.relname, to_char(c.reltuples, 'FM999,999,999,990'),
       pg_size_pretty(pg_table_size(c.oid)), pg_size_pretty(pg_indexes_size(c.oid)) || ' |'
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND (n.nspname = 'public' AND (c.relname LIKE 'request_logs_20%' OR c.relname IN ('ledger_transactions', 'ledger_entries')))
   OR c.relkind = 'r' AND n.nspname = 'finance'
ORDER BY n.nspname DESC, c.relname;
SQL
)
INDEX_SIZES=$(psqlq -F ' | ' -c "SELECT '| ' || c.relname, pg_size_pretty(pg_relation_size(c.oid)) || ' |' FROM pg_class c WHERE c.relkind = 'i' AND c.relname LIKE 'request_logs_$(echo "$MONTH" | cut -c1-7 | tr - _)%' ORDER BY 1")
TOTAL_ROWS=$(psqlq -c "SELECT count(*) FROM request_logs")
MONTH_ROWS=$(psqlq -c "SELECT count(*) FROM request_logs WHERE $MR")
LEDGER_TXNS=$(psqlq -c "SELECT count(*) FROM ledger_transactions")
PG_VERSION=$(psqlq -c "SHOW server_version")
PG_SETTINGS=$(psqlq -c "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', 'max_parallel_workers_per_gather', 'jit', 'effective_cache_size', 'random_page_cost')")
CPU=$(nproc)
MEM=$(free -g | awk '/Mem:/ {print $2 " GB"}')
T_TOTAL=$(elapsed "$T_START")
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
  cat <<EOF
# Request logs and finance views at scale

Generated by \`bench/request_logs/run.sh\` on $(date -u +%Y-%m-%d) (UTC). Re-run with
\`ROWS=30000000 bench/request_logs/run.sh\` for a full-size month; every number below comes from
the run that wrote this file.

## Method

- Machine: $CPU cores, $MEM RAM, shared with other work: load average (1, 5, 15 min) $LOAD_START
  at the start and $LOAD_END at the end of the run. PostgreSQL $PG_VERSION with server defaults
  ($PG_SETTINGS); every session of the run sets \`work_mem = '$WORK_MEM'\` (PGOPTIONS).
- A scratch database migrated with $MIGRATED_WITH: all of migrations/ ($(ls migrations | tr '\n' ' ')),
  including the finance rollups and their capture triggers, and every other trigger the schema
  has; then:
  - **$MONTH_ROWS request_logs rows in $MONTH** ($DAYS days, one \`INSERT ... SELECT generate_series\`
    per day straight into the partitioned table), plus $((TOTAL_ROWS - MONTH_ROWS)) rows in the
    month before and the write-path tests below, $TOTAL_ROWS in all.
    $ACCOUNTS accounts with a heavy skew (account = ⌊$ACCOUNTS·u³⌋: the biggest tenant sends about
    8% of all traffic, the median one a few hundred requests), $KEYS_PER_ACCOUNT keys each (skewed
    to the first), $MODELS models (each tenant mostly uses its favourite and up to three more;
    favourites follow a skewed popularity), each model served by 2 of $PROVIDERS providers (70/30),
    95% successes, exact per-token costs, realistic JSON metadata (cost_details, prices,
    attempts), UUIDv7-style ids in time order.
  - Ledger: a \$5,000 grant per account, top-ups with the \$0.35 + 5% fee for a fifth of them,
    refunds, disputes and expiries, and **one usage transaction (two entries) per charged request
    of $LEDGER_SAMPLE% of the accounts** ($LEDGER_TXNS ledger transactions in all).
  - \`finance.compact_rollups('-infinity')\`, then \`VACUUM ANALYZE\`.
- Each query is run twice with \`EXPLAIN (ANALYZE, BUFFERS)\`; both execution times are shown
  (the data was just written, so much of it is in the OS cache: "first" is not a cold-disk read).
  Full plans are in the appendix.

## Load

| step | seconds |
|---|---|
| grants, top-ups, refunds, disputes, expiries | $T_MONEY |
| request_logs, previous month ($PREV_ROWS rows) | $T_PREV |
| request_logs, $MONTH ($ROWS rows, $DAYS statements, rollup trigger on) | $T_LOAD |
| usage ledger transactions for the sample (one statement per day; balance check, foreign keys and the finance capture trigger on; other row triggers off: ${OTHER_TRIGGERS:-none}) | $T_LEDGER |
| \`finance.compact_rollups('-infinity')\` after the load (merges the groups split across statements, e.g. by requests completing after midnight) | $T_COMPACT |
| \`VACUUM ANALYZE\` | $T_VACUUM |
| **whole run** | **$T_TOTAL** |

Rollup rows (usage_daily / ledger_daily): $ROLLUP_ROWS_BEFORE after the load, $ROLLUP_ROWS_AFTER
after compaction.

## Sizes

| relation | rows (estimate) | table | indexes |
|---|---|---|---|
$SIZES

Indexes of the $MONTH partition:

| index | size |
|---|---|
$INDEX_SIZES

## Queries

Times in milliseconds. F = finance views, R = the raw-table queries the rollups replace, A = the
per-account activity queries the API runs against request_logs.

| query | first run | second run | rows | buffers (top node) |
|---|---|---|---|---|
EOF
  cat "$SUMMARY"
  cat <<EOF

## Write path

Gateway-shaped writes, measured as wall time of psql sessions (generation of the rows included,
the same in both runs, so the difference is the trigger):

| test | with capture trigger | without | difference |
|---|---|---|---|
| $WRITER_BATCHES request_logs INSERTs of 500 rows ($((WRITER_BATCHES * 500)) rows, one statement each, as the ledger writer batches) | $T_WITH s | $T_WITHOUT s | $(awk -v a="$T_WITH" -v b="$T_WITHOUT" 'BEGIN { printf "%+.1f s (%+.0f%%)", a - b, (a - b) / b * 100 }') |
| $LEDGER_POSTINGS usage postings, two INSERT statements each, 500 per commit (as \`post_batch\`) | $T_L_WITH s | $T_L_WITHOUT s | $(awk -v a="$T_L_WITH" -v b="$T_L_WITHOUT" 'BEGIN { printf "%+.1f s (%+.0f%%)", a - b, (a - b) / b * 100 }') |

- The rows written with the trigger disabled were then rolled up from the raw rows with
  \`finance.rebuild_usage_daily\` (two completion days) in $T_REBUILD s; \`finance.usage_rollup_drift\` over both days
  found $DRIFT differing groups afterwards.
- The ledger postings left $PENDING ledger_daily rows for the current month (one delta per book
  per transaction); \`finance.daily_revenue\` for the current month took $REV_UNCOMPACTED ms over them and
  $REV_COMPACTED ms after \`finance.compact_rollups('$CUR')\` ($COMPACTED, $T_COMPACT2 s).
- For reference, the SQL of \`infron ledger verify\` (store::ledger::verify) over this database took
  $T_VERIFY.

## Appendix: plans

EOF
  cat "$PLANS"
} >"$OUT"
rm -f "$PLANS" "$SUMMARY"
log "wrote $OUT in $T_TOTAL s"
