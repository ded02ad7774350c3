#!/usr/bin/env bash
# Measures what Infron adds to a request's latency, with billing on: the same small chat
# completion sent (a) straight to the mock provider and (b) through the gateway (auth, parse,
# route, reserve in Redis, call, settle in Redis, ledger writer posting to Postgres in the
# background). The difference of the two latency distributions is the gateway's overhead.
# Results go to bench/overhead/RESULTS.md. Needs wrk (apt-get install wrk), Postgres and Redis.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
DURATION="${DURATION:-20s}"
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-1}"
command -v wrk >/dev/null || { echo "install wrk first (apt-get install wrk)"; exit 1; }
scripts/ensure-services.sh
cargo build --release --quiet --bin infron --bin infron-mock-provider
BIN="$CARGO_TARGET_DIR/release"

db="infron_bench_$(date +%s)"
admin="postgres://postgres@127.0.0.1:5432/postgres"
psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="redis://127.0.0.1:6379"
export INFRON_REDIS_PREFIX="bench-$db"
export INFRON_KEY_SECRET="bench-secret-0123456789abcdef0123456789abcdef"
export INFRON_BIND="127.0.0.1:18080"
export INFRON_CATALOG="config/catalog.mock.toml"
export INFRON_WORKERS="${INFRON_WORKERS:-1}"
export INFRON_RESPONSE_CACHE="off"
export RUST_LOG=warn
export MOCK_BASE_URL="http://127.0.0.1:18090"
export MOCK_PROVIDER_KEY="bench-mock-key"

"$BIN/infron-mock-provider" --bind 127.0.0.1:18090 --expected-api-key "$MOCK_PROVIDER_KEY" >/dev/null 2>&1 &
mock_pid=$!
"$BIN/infron" serve >/tmp/infron-bench.log 2>&1 &
api_pid=$!
cleanup() {
  kill "$api_pid" "$mock_pid" 2>/dev/null || true
  wait "$api_pid" "$mock_pid" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
healthy() { python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:18080/health', timeout=1)" >/dev/null 2>&1; }
for _ in $(seq 1 100); do healthy && break; sleep 0.1; done

account=$("$BIN/infron" accounts create --name bench)
key=$("$BIN/infron" keys create --account "$account" 2>/dev/null)
"$BIN/infron" credits grant --account "$account" --amount 100000 --reason bench >/dev/null

body() { printf '{"model":"%s","messages":[{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32}' "$1"; }
load() { # seconds connections url model key [outfile]
  BENCH_BODY="$(body "$4")" BENCH_KEY="$5" wrk -t"$THREADS" -c"$2" -d"$1" --latency -s bench/overhead/chat.lua "$3"
}
# Warm up both paths (connection pools, key cache, hot balance).
load 3s 4 http://127.0.0.1:18090/v1/chat/completions gpt-4o-mini "$MOCK_PROVIDER_KEY" >/dev/null
load 3s 4 http://127.0.0.1:18080/v1/chat/completions mock/gpt-4o-mini "$key" >/dev/null
for c in 1 "$CONNECTIONS"; do
  load "$DURATION" "$c" http://127.0.0.1:18090/v1/chat/completions gpt-4o-mini "$MOCK_PROVIDER_KEY" > "/tmp/wrk-direct-$c.txt"
  load "$DURATION" "$c" http://127.0.0.1:18080/v1/chat/completions mock/gpt-4o-mini "$key" > "/tmp/wrk-gateway-$c.txt"
done

# Every request is charged: wait until the ledger writer has posted them all and the queue is
# empty, and report how long that took after the load stopped.
count() { grep -o '[0-9]* requests in' "$1" | grep -o '^[0-9]*'; }
sent=$(( $(count /tmp/wrk-gateway-1.txt) + $(count "/tmp/wrk-gateway-$CONNECTIONS.txt") ))
start=$(date +%s.%N)
for _ in $(seq 1 600); do
  logged=$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM request_logs")
  queued=$(redis-cli XLEN "$INFRON_REDIS_PREFIX:settlements")
  # Warm-up requests are logged too: at least as many as measured, and nothing queued, is done.
  [ "$logged" -ge "$sent" ] && [ "$queued" = "0" ] && break
  sleep 0.1
done
drain=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
charged=$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM ledger_transactions WHERE kind = 'usage'")
logged=$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM request_logs")
verify=$("$BIN/infron" ledger verify >/dev/null 2>&1 && echo clean || echo VIOLATIONS)
rss_kb=$(ps -o rss= -p "$api_pid" | tr -d ' ')

python3 bench/overhead/report.py "$CONNECTIONS" "$charged" "$logged" "$rss_kb" "$DURATION" "$INFRON_WORKERS" "$drain" "$verify" \
  > bench/overhead/RESULTS.md
cat bench/overhead/RESULTS.md
