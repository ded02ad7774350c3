#!/usr/bin/env bash
# Dashboard page render times at scale (issue 11: every page ≤ 50 ms server-side at p95 with
# 10 million request logs in the database).
#
# Creates a scratch database, applies the migrations with `infron migrate`, and loads ROWS
# request_logs rows spread over the DAYS days up to now by set-based INSERT ... SELECT (one
# statement per day, so the usage rollup trigger runs as it does for the ledger writer's
# batches): HEAVY_SHARE percent of them belong to one tenant, the one measured, with KEYS keys,
# the rest to TENANTS other tenants. The heavy tenant's owner is added with `infron users add`
# and given credits with `infron credits grant`. Then `infron serve` (the release binary) runs on
# that database; the owner signs in over the API, and every dashboard page is fetched REQUESTS
# times in a row over one keep-alive connection after WARMUP untimed fetches, with the filters
# and ranges people use (Logs pages deep in the keyset, filtered by key, model, outcome and
# dates; Activity over every range and grouping; log details). Prints p50 / p95 / p99 / max per
# page, as the client on the same machine saw them (server time plus a loopback round trip),
# and writes them to RESULTS.md next to this script. Drops the database at the end (KEEP_DB=1
# keeps it; BENCH_DB=name reuses a database loaded before, skipping the load).
#
# Usage: bench/pages/run.sh                      # 10 million rows, ~15 minutes on 2 cores
#        ROWS=1000000 bench/pages/run.sh
# Needs psql and a Postgres superuser (PGHOST/PGPORT/PGUSER, default postgres@127.0.0.1:5432),
# Redis on REDIS_URL (default redis://127.0.0.1:6379), and the release binary
# ($INFRON_BIN, default $CARGO_TARGET_DIR/release/infron, built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

ROWS=${ROWS:-10000000}
DAYS=${DAYS:-90}
TENANTS=${TENANTS:-1000}
HEAVY_SHARE=${HEAVY_SHARE:-20}
KEYS=${KEYS:-12}
MODELS=${MODELS:-24}
REQUESTS=${REQUESTS:-60}
WARMUP=${WARMUP:-5}
OUT=${OUT:-bench/pages/RESULTS.md}
export PGTZ=UTC PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}
BIN=${INFRON_BIN:-$CARGO_TARGET_DIR/release/infron}
REUSE=${BENCH_DB:+1}
DB=${BENCH_DB:-infron_pages_$(date +%s)}

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
psqlq() { psql -X -q -v ON_ERROR_STOP=1 -At -d "$DB" "$@"; }

if [ ! -x "$BIN" ]; then
  log "building the release binary"
  cargo build --release --bin infron
fi

export DATABASE_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379}
export INFRON_REDIS_PREFIX="pages-$DB"
export INFRON_KEY_SECRET="pages-bench-secret-0123456789abcdef0123456789"
EMAIL=owner@pages.bench
PASSWORD=pages-bench-password-1

cleanup() {
  if [ -n "${server_pid:-}" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -z "${KEEP_DB:-}" ] && [ -z "$REUSE" ]; then
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [ -z "$REUSE" ]; then
  log "database $DB; $ROWS request logs over $DAYS days, $HEAVY_SHARE% for the measured tenant"
  psql -X -q -d postgres -c "CREATE DATABASE \"$DB\""
  "$BIN" migrate >/dev/null
  ACCOUNT=$("$BIN" accounts create --name "heavy tenant")
  echo "$PASSWORD" | "$BIN" users add --email "$EMAIL" --account "$ACCOUNT" --role owner >/dev/null
  "$BIN" credits grant --account "$ACCOUNT" --amount 1000000 --reason "pages bench" >/dev/null
  START=$(psqlq -c "SELECT date_trunc('day', now()) - interval '$((DAYS - 1)) days'")
  psqlq <<SQL
SELECT format('CREATE TABLE IF NOT EXISTS %I PARTITION OF request_logs FOR VALUES FROM (%L) TO (%L)',
              'request_logs_' || to_char(m, 'YYYY_MM'), m, (m + interval '1 month')::date)
FROM generate_series(date_trunc('month', '$START'::timestamptz), date_trunc('month', now()) - interval '1 month',
                     interval '1 month') m \gexec

CREATE TABLE bench_tenants (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO bench_tenants VALUES (0, '$ACCOUNT');
INSERT INTO bench_tenants SELECT n, gen_random_uuid() FROM generate_series(1, $TENANTS) n;
INSERT INTO accounts (id, name, created_at)
SELECT id, 'tenant ' || n, '$START'::timestamptz FROM bench_tenants WHERE n > 0;

CREATE TABLE bench_keys (n int, k int, id uuid, PRIMARY KEY (n, k));
INSERT INTO bench_keys
SELECT 0, k, gen_random_uuid() FROM generate_series(0, $KEYS - 1) k
UNION ALL SELECT n, 0, gen_random_uuid() FROM bench_tenants WHERE n > 0;
INSERT INTO api_keys (id, account_id, name, key_hash, key_hint)
SELECT k.id, t.id, CASE WHEN k.n = 0 THEN 'key ' || k.k ELSE 'default' END,
       decode(md5(k.id::text), 'hex') || decode(md5(k.id::text || 'x'), 'hex'), 'sk-inf-...' || lpad(k.k::text, 4, '0')
FROM bench_keys k JOIN bench_tenants t USING (n);

CREATE TABLE bench_models (m int PRIMARY KEY, price_id uuid NOT NULL, pp numeric, pc numeric);
INSERT INTO bench_models
SELECT m, md5('pages-bench-model-' || m)::uuid, (m + 1) * 0.0000001, (m + 1) * 0.0000004
FROM generate_series(0, $MODELS - 1) m;
INSERT INTO price_snapshots (id, prices)
SELECT price_id, jsonb_build_object('prompt', pp::text, 'completion', pc::text) FROM bench_models;

-- One day of traffic: HEAVY_SHARE% to the measured tenant (its keys skewed), the rest skewed
-- across the other tenants; a skewed model mix, 5% failures, 60% streamed.
CREATE FUNCTION bench_day(day_start timestamptz, n_rows int) RETURNS void LANGUAGE sql AS \$\$
INSERT INTO request_logs (id, created_at, account_id, api_key_id, requested_model, model, provider,
    upstream_model, endpoint_kind, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
    cost, price_id, usage_source, status, error_class, finish_reason, streamed, cancelled, cache_hit,
    attempts, latency_ms, first_token_ms, completed_at)
SELECT (substr(g.h, 1, 8) || '-' || substr(g.h, 9, 4) || '-7' || substr(gen_random_uuid()::text, 16))::uuid,
       g.created_at, t.id, k.id, 'vendor/model-' || g.m,
       CASE WHEN g.status = 400 THEN NULL ELSE 'vendor/model-' || g.m END,
       CASE WHEN g.status = 200 THEN 'provider-' || (g.m % 6) END,
       CASE WHEN g.status = 200 THEN 'upstream-' || g.m END,
       'chat', g.pt, g.ct, 0, 0,
       CASE WHEN g.status = 200 THEN g.pt * bm.pp + g.ct * bm.pc ELSE 0 END,
       CASE WHEN g.status <> 400 THEN bm.price_id END,
       CASE WHEN g.status = 200 THEN 'provider' END,
       g.status::smallint,
       CASE g.status WHEN 200 THEN NULL WHEN 502 THEN 'upstream' WHEN 429 THEN 'rate_limited' ELSE 'invalid_request' END,
       CASE WHEN g.status = 200 THEN 'stop' END,
       g.streamed, false, false,
       CASE WHEN g.status = 502 THEN '[{"provider": "provider-1", "status": 502, "error_class": "upstream"}]'::jsonb END,
       g.latency, CASE WHEN g.streamed THEN g.latency / 4 END,
       g.created_at + g.latency * interval '1 millisecond'
FROM (
    SELECT r.*, lpad(to_hex((extract(epoch FROM r.created_at) * 1000)::bigint), 12, '0') AS h,
           CASE WHEN r.heavy THEN 0 ELSE 1 + floor($TENANTS * power(r.tr, 3))::int END AS n,
           CASE WHEN r.heavy THEN floor($KEYS * power(r.kr, 2))::int ELSE 0 END AS k,
           floor($MODELS * power(r.mr, 2))::int AS m,
           CASE WHEN r.s < 0.95 THEN 200 WHEN r.s < 0.97 THEN 502 WHEN r.s < 0.99 THEN 429 ELSE 400 END AS status
    FROM (
        SELECT day_start + (i + random()) * (interval '1 day' / n_rows) AS created_at,
               random() < $HEAVY_SHARE / 100.0 AS heavy, random() AS tr, random() AS kr,
               random() AS mr, random() AS s,
               1 + floor(4000 * power(random(), 2))::bigint AS pt,
               1 + floor(1000 * power(random(), 2))::bigint AS ct,
               random() < 0.6 AS streamed,
               200 + floor(20000 * power(random(), 2))::int AS latency
        FROM generate_series(0, n_rows - 1) i
        OFFSET 0
    ) r
    OFFSET 0
) g
JOIN bench_tenants t ON t.n = g.n
JOIN bench_keys k ON k.n = g.n AND k.k = g.k
JOIN bench_models bm ON bm.m = g.m
WHERE g.created_at < now()
\$\$;
SQL
  T0=$(date +%s)
  for ((d = 0; d < DAYS; d++)); do
    psqlq -c "SELECT bench_day('$START'::timestamptz + $d * interval '1 day', $((ROWS / DAYS)))" >/dev/null
    if (( d % 10 == 9 )); then log "loaded $((d + 1)) of $DAYS days"; fi
  done
  # The measured tenant's usage in the ledger as the writer posts it when every batch holds one
  # of its requests (the most ledger rows a tenant can have): one usage transaction per charged
  # request, debiting its credits book and crediting usage revenue. The per-entry lot projection
  # trigger is off for this bulk load of a scratch database (it would only consume the grant's
  # lot); the finance rollup triggers run as they do for the writer.
  log "usage transactions of the measured tenant"
  psqlq <<SQL
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_project;
CREATE FUNCTION bench_usage_day(day_start timestamptz) RETURNS void LANGUAGE sql AS \$\$
INSERT INTO ledger_transactions (id, external_id, kind, account_id, effective_at, created_at)
SELECT r.id, 'usage:bench:' || r.id, 'usage', r.account_id, r.completed_at, r.completed_at
FROM request_logs r
WHERE r.account_id = '$ACCOUNT' AND r.cost <> 0 AND r.created_at >= day_start AND r.created_at < day_start + interval '1 day';
INSERT INTO ledger_entries (transaction_id, ledger_account_id, amount, created_at)
SELECT r.id, b.book, b.amount, r.completed_at
FROM request_logs r
CROSS JOIN LATERAL (VALUES ((SELECT id FROM ledger_accounts WHERE account_id = '$ACCOUNT' AND kind = 'credits'), r.cost),
                           ('00000000-0000-0000-0000-000000000002'::uuid, -r.cost)) b(book, amount)
WHERE r.account_id = '$ACCOUNT' AND r.cost <> 0 AND r.created_at >= day_start AND r.created_at < day_start + interval '1 day';
\$\$;
SQL
  for ((d = 0; d < DAYS; d++)); do
    psqlq -c "SELECT bench_usage_day('$START'::timestamptz + $d * interval '1 day')" >/dev/null
  done
  psqlq <<SQL >/dev/null
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_project;
UPDATE ledger_accounts SET balance = balance - (
    SELECT coalesce(sum(cost), 0) FROM request_logs WHERE account_id = '$ACCOUNT')
WHERE account_id = '$ACCOUNT' AND kind = 'credits';
SQL
  psqlq -c "VACUUM ANALYZE" >/dev/null
  LOAD_SECS=$(( $(date +%s) - T0 ))
  log "loaded in ${LOAD_SECS}s"
else
  ACCOUNT=$(psqlq -c "SELECT id FROM bench_tenants WHERE n = 0")
  LOAD_SECS=""
fi
TOTAL=$(psqlq -c "SELECT count(*) FROM request_logs")
HEAVY=$(psqlq -c "SELECT count(*) FROM request_logs WHERE account_id = '$ACCOUNT'")
LAST_DAY=$(psqlq -c "SELECT count(*) FROM request_logs WHERE account_id = '$ACCOUNT' AND created_at > now() - interval '1 day'")
SIZE=$(psqlq -c "SELECT pg_size_pretty(pg_database_size(current_database()))")
USAGE_TXNS=$(psqlq -c "SELECT count(*) FROM ledger_transactions WHERE account_id = '$ACCOUNT' AND kind = 'usage'")
log "$TOTAL request logs ($HEAVY of the measured tenant, $LAST_DAY in its last 24 hours); database $SIZE"

# Migrations the loaded database lacks (a reused one) before the server starts.
"$BIN" migrate >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
INFRON_BIND="127.0.0.1:$PORT" INFRON_PUBLIC_URL="$BASE" INFRON_CATALOG=config/catalog.mock.toml \
  MOCK_BASE_URL=http://127.0.0.1:9 MOCK_PROVIDER_KEY=unused \
  "$BIN" serve >"/tmp/$DB-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 200); do curl -fs "$BASE/health" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$BASE/health" >/dev/null || { echo "the server did not start:"; cat "/tmp/$DB-server.log"; exit 1; }

BASE="$BASE" EMAIL="$EMAIL" PASSWORD="$PASSWORD" ACCOUNT="$ACCOUNT" DB="$DB" REQUESTS="$REQUESTS" \
  WARMUP="$WARMUP" ROWS_TOTAL="$TOTAL" ROWS_HEAVY="$HEAVY" ROWS_DAY="$LAST_DAY" DB_SIZE="$SIZE" \
  LOAD_SECS="$LOAD_SECS" USAGE_TXNS="$USAGE_TXNS" OUT="$OUT" python3 bench/pages/measure.py
