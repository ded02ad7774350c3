#!/usr/bin/env bash
# Soak: the gateway under moderate load for SOAK_SECS (default 30 minutes) with provider
# faults all along (errors, resets before headers and mid-stream, in-stream errors, slow
# answers, clients hanging up, 20 s bursts of 503s every 5 minutes) and one Redis restart
# (emptied, at half time) on a Redis of its own. It samples the gateway's resident memory,
# open file descriptors and established connections every 10 s, and checks at the end:
#   - resident memory flat (last quarter within 25% or 16 MiB of the second quarter),
#   - open descriptors and connections not growing,
#   - unexpected outcomes (a scenario ending in a status it should not) not growing,
#   - every request logged and charged once: logged >= sent, the tenant's balance fell by
#     exactly the sum of the logged costs, and `infron ledger verify` is clean.
# Results: bench/soak/RESULTS.md (and the samples next to it in /tmp). Needs Postgres (the
# shared one: a database of its own), redis-server, python3.
#   SOAK_SECS=120 bench/soak/run.sh                 # a 2-minute run
#   SOAK_RATE=20 (requests/s), SOAK_PROFILE=debug   # use debug binaries (no release build)
#   SOAK_RESULTS=FILE                               # write the report there (default
#                                                   # bench/soak/RESULTS.md; the test command's
#                                                   # 2-minute pass writes under the build dir)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
SOAK_SECS="${SOAK_SECS:-1800}"
SOAK_RATE="${SOAK_RATE:-25}"
SOAK_PROFILE="${SOAK_PROFILE:-release}"
RESULTS="${SOAK_RESULTS:-bench/soak/RESULTS.md}"
SEGMENT=$(( SOAK_SECS >= 600 ? 60 : (SOAK_SECS / 10 > 5 ? SOAK_SECS / 10 : 5) ))
command -v redis-server >/dev/null || { echo "redis-server is required"; exit 1; }

if [ "$SOAK_PROFILE" = release ]; then
  cargo build --release --quiet --bin infron --bin infron-mock-provider
  BIN="$CARGO_TARGET_DIR/release"
else
  cargo build --quiet --bin infron --bin infron-mock-provider
  BIN="$CARGO_TARGET_DIR/debug"
fi

free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
REDIS_PORT=$(free_port); API_PORT=$(free_port); MOCK_PORT=$(free_port)
work=$(mktemp -d /tmp/infron-soak.XXXXXX)
db="infron_soak_$(date +%s)"
admin="postgres://postgres@127.0.0.1:5432/postgres"
psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null

start_redis() {
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --daemonize no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server did not start"; exit 1
}
start_redis

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export INFRON_REDIS_PREFIX="soak"
export INFRON_KEY_SECRET="soak-secret-0123456789abcdef0123456789abcdef"
export INFRON_BIND="127.0.0.1:$API_PORT"
export INFRON_CATALOG="config/catalog.mock.toml"
export INFRON_RESPONSE_CACHE="off"
export RUST_LOG=warn
export MOCK_BASE_URL="http://127.0.0.1:$MOCK_PORT"
export MOCK_PROVIDER_KEY="soak-mock-key"

"$BIN/infron-mock-provider" --bind "127.0.0.1:$MOCK_PORT" --expected-api-key "$MOCK_PROVIDER_KEY" >/dev/null 2>&1 &
mock_pid=$!
"$BIN/infron" serve >"$work/infron.log" 2>&1 &
api_pid=$!
sampler_pid=""
cleanup() {
  [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
  kill "$api_pid" "$mock_pid" 2>/dev/null || true
  wait "$api_pid" "$mock_pid" 2>/dev/null || true
  kill "$redis_pid" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT
healthy() { python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$API_PORT/health', timeout=1)" >/dev/null 2>&1; }
for _ in $(seq 1 300); do healthy && break; sleep 0.1; done
healthy || { echo "gateway did not start"; cat "$work/infron.log"; exit 1; }

account=$("$BIN/infron" accounts create --name soak)
key=$("$BIN/infron" keys create --account "$account" 2>/dev/null)
"$BIN/infron" credits grant --account "$account" --amount 100000 --reason soak >/dev/null
balance() { psql "$DATABASE_URL" -qtAc "SELECT balance FROM ledger_accounts WHERE account_id = '$account' AND kind = 'credits'"; }

# Samples every 10 s: seconds since start, resident KiB, open descriptors, established
# connections to the gateway's port, the gateway's connections to Redis, its sockets in
# CLOSE-WAIT.
(
  t0=$(date +%s)
  while kill -0 "$api_pid" 2>/dev/null; do
    rss=$(ps -o rss= -p "$api_pid" | tr -d ' ')
    fds=$(ls "/proc/$api_pid/fd" 2>/dev/null | wc -l)
    conns=$(ss -Htn state established "( sport = :$API_PORT )" 2>/dev/null | wc -l)
    redis_conns=$(ss -Htnp "( dport = :$REDIS_PORT )" 2>/dev/null | grep -c "pid=$api_pid," || true)
    close_wait=$(ss -Htnp state close-wait 2>/dev/null | grep -c "pid=$api_pid," || true)
    echo "$(( $(date +%s) - t0 )) $rss $fds $conns $redis_conns $close_wait"
    sleep 10
  done
) >"$work/samples.txt" &
sampler_pid=$!

# One Redis restart, emptied, at half time.
(
  sleep $(( SOAK_SECS / 2 ))
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  sleep 2
  echo "$(date +%s)" >"$work/redis-restart"
) &
restart_pid=$!

python3 bench/soak/load.py "http://127.0.0.1:$API_PORT" "$key" "$SOAK_SECS" "$SOAK_RATE" "$SEGMENT" "$work/segments.jsonl" &
load_pid=$!
wait "$restart_pid"
wait "$redis_pid" 2>/dev/null || true
start_redis
wait "$load_pid"

sent=$(python3 -c "import json,sys; print(sum(json.loads(l)['sent'] for l in open('$work/segments.jsonl')))")
# Every request is logged and charged: wait for the ledger writer to post them all.
drained=no
last=-1
for _ in $(seq 1 240); do
  logged=$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM request_logs")
  if [ "$logged" -ge "$sent" ] && [ "$logged" = "$last" ]; then drained=yes; break; fi
  last=$logged
  sleep 1
done
logged=$(psql "$DATABASE_URL" -qtAc "SELECT count(*) FROM request_logs")
costs=$(psql "$DATABASE_URL" -qtAc "SELECT COALESCE(sum(cost), 0) FROM request_logs")
spent=$(psql "$DATABASE_URL" -qtAc "SELECT 100000 - ($(balance))")
if "$BIN/infron" ledger verify >"$work/verify.txt" 2>&1; then verify=clean; else verify=VIOLATIONS; fi
kill "$sampler_pid" 2>/dev/null || true
sampler_pid=""

python3 bench/soak/report.py "$work" "$SOAK_SECS" "$SOAK_RATE" "$SOAK_PROFILE" "$sent" "$logged" "$costs" "$spent" "$verify" "$drained" \
  | tee "$RESULTS"
echo "samples and logs: $work"
grep -q '^Verdict: pass' "$RESULTS"
