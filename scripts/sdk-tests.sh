#!/usr/bin/env bash
# The client compatibility suite: real client libraries, unmodified, against a real gateway.
#   tests/sdk/*.py (pytest): the official `openai` and `anthropic` Python packages, LiteLLM as a
#     client (Infron as its OpenRouter provider) and langchain-openai's ChatOpenAI;
#   tests/sdk/node/*.test.mjs (node --test): the official `openai` Node.js package, and the
#     Vercel AI SDK through @openrouter/ai-sdk-provider.
# Versions are pinned in tests/sdk/requirements.txt and tests/sdk/node/package-lock.json.
# Starts the mock provider and `infron serve` on free ports with config/catalog.mock.toml and a
# fresh database, creates accounts and keys with the CLI, runs the Python and Node parts side by
# side, then stops everything and drops the database. Expects PostgreSQL and Redis up
# (scripts/ensure-services.sh). Installs python3-venv and Node.js/npm with apt-get if missing,
# the Python packages into $INFRON_SDK_VENV (default ~/.cache/infron/sdk-venv) and the npm
# packages with `npm ci` into tests/sdk/node/node_modules, each only when its pins changed.
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
# Install only when the pins changed since the last install into this venv.
req_sum=$(sha256sum tests/sdk/requirements.txt | cut -d' ' -f1)
if [ "$(cat "$venv/.infron-requirements" 2>/dev/null)" != "$req_sum" ]; then
  echo "[sdk] pip install -r tests/sdk/requirements.txt" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/sdk/requirements.txt
  echo "$req_sum" >"$venv/.infron-requirements"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "[sdk] installing Node.js and npm" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# npm ci (exact versions from the lockfile; npm's own cache keeps the tarballs) whenever the
# lockfile changed since the last install.
node_dir=tests/sdk/node
lock_sum=$(sha256sum "$node_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$node_dir/node_modules/.infron-lock" 2>/dev/null)" != "$lock_sum" ]; then
  echo "[sdk] npm ci in $node_dir" >&2
  npm ci --prefix "$node_dir" --no-audit --no-fund --loglevel=error >&2
  echo "$lock_sum" >"$node_dir/node_modules/.infron-lock"
fi

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
  rm -rf "$logs"
}
trap cleanup EXIT

healthy() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$api_port/health', timeout=1)" >/dev/null 2>&1; }
for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || { echo "gateway did not start:"; cat "$logs/infron.log"; exit 1; }

account=$("$BIN/infron" accounts create --name sdk-tests)
key=$("$BIN/infron" keys create --account "$account" 2>/dev/null)
"$BIN/infron" credits grant --account "$account" --amount 5 --reason "sdk tests" >/dev/null
# A key allowed one request a minute, for the 429 checks ("key id ID created" goes to stderr).
limited_key=$("$BIN/infron" keys create --account "$account" --name limited 2>"$logs/limited-key.err")
limited_id=$(sed -n 's/^key id \([0-9a-f-]*\) created.*/\1/p' "$logs/limited-key.err")
"$BIN/infron" keys set-rate-limit "$limited_id" --rpm 1 >/dev/null
# A key of an account that was never granted credit, for the 402 checks.
broke_account=$("$BIN/infron" accounts create --name sdk-tests-no-credit)
broke_key=$("$BIN/infron" keys create --account "$broke_account" 2>/dev/null)

export INFRON_BASE_URL="http://127.0.0.1:$api_port" INFRON_KEY="$key" \
  INFRON_LIMITED_KEY="$limited_key" INFRON_BROKE_KEY="$broke_key" LITELLM_LOCAL_MODEL_COST_MAP=True
# Both parts at once, each into its own file, printed whole once both are done.
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/sdk >"$logs/python.out" 2>&1 &
py_pid=$!
(cd "$node_dir" && node --test --test-reporter=spec ./*.test.mjs) >"$logs/node.out" 2>&1 &
node_pid=$!
py_rc=0; node_rc=0
wait "$py_pid" || py_rc=$?
wait "$node_pid" || node_rc=$?
echo "--- python (pytest tests/sdk)"; cat "$logs/python.out"
echo "--- node (node --test tests/sdk/node)"; cat "$logs/node.out"

# One closing line for both: pytest's summary ("3 failed, 97 passed, 1 error in 9.1s") and
# node's ("ℹ pass 60", "ℹ fail 0").
summary=$(grep -E '(passed|failed|error).* in [0-9.]+s' "$logs/python.out" | tail -1 || true)
py_passed=$(grep -Eo '[0-9]+ passed' <<<"$summary" | cut -d' ' -f1 || true)
py_failed=0
for n in $(grep -Eo '[0-9]+ (failed|errors?)' <<<"$summary" | cut -d' ' -f1 || true); do py_failed=$((py_failed + n)); done
node_passed=$(sed -n 's/^[^a-z]*pass \([0-9]*\)$/\1/p' "$logs/node.out" | tail -1)
node_failed=$(sed -n 's/^[^a-z]*fail \([0-9]*\)$/\1/p' "$logs/node.out" | tail -1)
passed=$(( ${py_passed:-0} + ${node_passed:-0} ))
failed=$(( ${py_failed:-0} + ${node_failed:-0} ))
if [ "$py_rc" != 0 ] || [ "$node_rc" != 0 ]; then
  echo "--- gateway log (last 50 lines)"; tail -50 "$logs/infron.log"
  echo "pytest exited $py_rc, node $node_rc"
  echo "sdk: $passed passed, $failed failed"
  exit 1
fi
echo "sdk: $passed passed, 0 failed"
