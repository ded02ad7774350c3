#!/usr/bin/env bash
# One command to a working gateway on this machine: starts PostgreSQL and Redis (installing
# them if needed), the mock provider (answers like OpenAI, Anthropic and Gemini without
# internet), migrates a local database, creates an account with $10 of credits, an API key and
# a demo user who signs in to the dashboard, and serves Infron on http://127.0.0.1:8080 until
# Ctrl-C. Ctrl-C (or kill) stops everything it started. Other addresses:
# INFRON_BIND=127.0.0.1:8081 MOCK_BIND=127.0.0.1:9091.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
scripts/ensure-services.sh
# The dashboard's front-end packages (without npm the pages still work, without htmx).
scripts/ensure-web.sh || echo "[dev] could not install the dashboard's npm packages; pages work without them" >&2

cargo build --bin infron --bin infron-mock-provider
BIN="$CARGO_TARGET_DIR/debug"

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/infron_dev}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
export INFRON_REDIS_PREFIX="${INFRON_REDIS_PREFIX:-infron-dev}"
export INFRON_BIND="${INFRON_BIND:-127.0.0.1:8080}"
export INFRON_CATALOG="${INFRON_CATALOG:-config/catalog.mock.toml}"
export MOCK_BIND="${MOCK_BIND:-127.0.0.1:9090}"
export MOCK_BASE_URL="http://$MOCK_BIND"
export MOCK_PROVIDER_KEY="${MOCK_PROVIDER_KEY:-mock-provider-key}"
mkdir -p .dev
if [ -z "${INFRON_KEY_SECRET:-}" ]; then
  [ -f .dev/key-secret ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dev/key-secret
  INFRON_KEY_SECRET=$(cat .dev/key-secret)
  export INFRON_KEY_SECRET
fi

db=${DATABASE_URL##*/}
admin=${DATABASE_URL%/*}/postgres
if ! psql "$admin" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null
fi

# A port already in use fails here, naming it, instead of a request hanging later.
port_taken() {
  local host=${1%:*} port=${1##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}
for pair in "INFRON_BIND=$INFRON_BIND" "MOCK_BIND=$MOCK_BIND"; do
  if port_taken "${pair#*=}"; then
    echo "error: ${pair#*=} (${pair%%=*}) is already in use; stop what listens there or set ${pair%%=*}=127.0.0.1:<free port>" >&2
    exit 1
  fi
done

pids=()
stop_all() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

"$BIN/infron-mock-provider" --bind "$MOCK_BIND" --expected-api-key "$MOCK_PROVIDER_KEY" 2>.dev/mock.log &
pids+=($!)
sleep 0.3
if ! kill -0 "${pids[0]}" 2>/dev/null; then
  echo "error: the mock provider did not start on $MOCK_BIND:" >&2
  cat .dev/mock.log >&2
  exit 1
fi

"$BIN/infron" migrate >/dev/null
# One demo account across runs, owned by the demo user who signs in to the dashboard.
account=""
if [ -f .dev/demo-account ] && "$BIN/infron" accounts show "$(cat .dev/demo-account)" >/dev/null 2>&1; then
  account=$(cat .dev/demo-account)
else
  account=$("$BIN/infron" accounts create --name "demo")
  echo "$account" > .dev/demo-account
  "$BIN/infron" credits grant --account "$account" --amount 10 --reason "quick start" >/dev/null
fi
key=$("$BIN/infron" keys create --account "$account" --name "demo $(date +%H:%M:%S)" 2>/dev/null)
demo_email="demo@example.com"
[ -f .dev/demo-password ] || head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' > .dev/demo-password
demo_password=$(cat .dev/demo-password)
"$BIN/infron" users add --email "$demo_email" --account "$account" --role owner \
  < .dev/demo-password 2>/dev/null

cat <<MSG

  Infron is starting on http://$INFRON_BIND with the mock provider behind it.

  Dashboard: http://$INFRON_BIND/
    sign in as $demo_email with the password $demo_password

  Account $account has the demo's credits (\$10 granted at its creation). A new API key
  (shown once):

    $key

  Try:
    curl http://$INFRON_BIND/v1/chat/completions \\
      -H "Authorization: Bearer $key" -H "Content-Type: application/json" \\
      -d '{"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}], "usage": {"include": true}}'

MSG
# In the background so the traps above run on Ctrl-C or kill; SIGTERM drains it.
"$BIN/infron" serve &
pids+=($!)
wait "${pids[1]}"
