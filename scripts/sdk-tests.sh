#!/usr/bin/env bash
# Runs the official OpenAI and Anthropic Python SDKs against a real gateway (tests/sdk). Starts the mock
# provider and `infron serve` on free ports with config/catalog.mock.toml and a fresh database,
# creates an account and key with the CLI, runs pytest, then stops everything and drops the
# database. Expects PostgreSQL and Redis up (scripts/ensure-services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
cargo build --quiet --bin infron --bin infron-mock-provider
BIN="$CARGO_TARGET_DIR/debug"

venv="${INFRON_SDK_VENV:-$HOME/.cache/infron/sdk-venv}"
if ! command -v python3 >/dev/null 2>&1; then
  echo "[sdk] installing python3" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian ships venv separately.
    rm -rf "$venv"
    echo "[sdk] installing python3-venv" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
mock_port=$(free_port)
api_port=$(free_port)
db="infron_sdk_$(date +%s)_$$"
admin="postgres://postgres@127.0.0.1:5432/postgres"
psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null

export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="redis://127.0.0.1:6379"
export INFRON_REDIS_PREFIX="sdk-$db"
export INFRON_KEY_SECRET="sdk-test-secret-0123456789abcdef0123456789"
export INFRON_BIND="127.0.0.1:$api_port"
export INFRON_CATALOG="config/catalog.mock.toml"
export INFRON_RESPONSE_CACHE="off"
export MOCK_BASE_URL="http://127.0.0.1:$mock_port"
export MOCK_PROVIDER_KEY="sdk-mock-key"
logs=$(mktemp -d)

"$BIN/infron-mock-provider" --bind "127.0.0.1:$mock_port" --expected-api-key "$MOCK_PROVIDER_KEY" >"$logs/mock.log" 2>&1 &
mock_pid=$!
"$BIN/infron" serve >"$logs/infron.log" 2>&1 &
api_pid=$!
cleanup() {
  kill "$api_pid" "$mock_pid" 2>/dev/null || true
  wait "$api_pid" "$mock_pid" 2>/dev/null || true
  psql "$admin" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

healthy() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$api_port/health', timeout=1)" >/dev/null 2>&1; }
for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || { echo "gateway did not start:"; cat "$logs/infron.log"; exit 1; }

account=$("$BIN/infron" accounts create --name sdk-tests)
key=$("$BIN/infron" keys create --account "$account" 2>/dev/null)
"$BIN/infron" credits grant --account "$account" --amount 5 --reason "sdk tests" >/dev/null

INFRON_BASE_URL="http://127.0.0.1:$api_port" INFRON_KEY="$key" "$venv/bin/python" -m pytest -q tests/sdk || {
  echo "--- gateway log"; tail -50 "$logs/infron.log"; exit 1;
}
