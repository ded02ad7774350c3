#!/usr/bin/env bash
# Fuzzes the gateway against its own OpenAPI document (GET /openapi.json, generated from the
# code) with schemathesis (PyPI, pinned in tests/schemathesis/requirements.txt): every documented
# operation gets generated requests, valid and invalid, and every answer must not be a server
# error and must match the document (status code, content type, body schema). Starts the mock
# provider and `infron serve` on free ports with config/catalog.mock.toml and a fresh database,
# like scripts/sdk-tests.sh, then:
#  - the model, usage and catalog routes with an inference key of an account holding credits;
#  - the key, account and sign-in routes with a management key of a second account, made by its
#    owner (a user added with the CLI, signed in over the API). Nothing is excluded: deleting or
#    changing a random key, member or invitation finds nothing (404), and what these routes may
#    change belongs to that account only;
#  - the operator and operations routes with an operator's session (`infron operators create`,
#    signed in over the API) and its CSRF token;
#  - the alert, auto top-up, checkout, account and sign-in routes with the owner's session and its
#    CSRF token, as the dashboard calls them (changing settings and alerts, leaving and
#    transferring need a signed-in user; signing out is left out so the session lasts the run).
#    schemathesis is told not to make up credentials of its own (with a made-up bearer key
#    beside the cookie, the key would be the one checked). No Stripe runs here, so what needs
#    one answers the documented 503: this run checks conformance (status, content type, schema)
#    but not "no 5xx"; the management-key run above checks the account and sign-in routes for
#    5xx.
# Any finding fails the script. Expects PostgreSQL and Redis up (scripts/ensure-services.sh).
# SCHEMATHESIS_MAX_EXAMPLES (default 10) bounds the generated cases per operation;
# SCHEMATHESIS_GATEWAY_LOG=FILE keeps the gateway's log (one access line per request).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
cargo build --quiet --bin infron --bin infron-mock-provider
BIN="$CARGO_TARGET_DIR/debug"

venv="${INFRON_SCHEMATHESIS_VENV:-$HOME/.cache/infron/schemathesis-venv}"
if ! command -v python3 >/dev/null 2>&1; then
  echo "[schemathesis] installing python3" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    echo "[schemathesis] installing python3-venv" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/schemathesis/requirements.txt

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
mock_port=$(free_port)
api_port=$(free_port)
db="infron_st_$(date +%s)_$$"
admin="postgres://postgres@127.0.0.1:5432/postgres"
psql "$admin" -qc "CREATE DATABASE \"$db\"" >/dev/null

base="http://127.0.0.1:$api_port"
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export REDIS_URL="redis://127.0.0.1:6379"
export INFRON_REDIS_PREFIX="st-$db"
export INFRON_KEY_SECRET="schemathesis-secret-0123456789abcdef0123456789"
export INFRON_BIND="127.0.0.1:$api_port"
export INFRON_PUBLIC_URL="$base"
export INFRON_CATALOG="config/catalog.mock.toml"
export INFRON_RESPONSE_CACHE="off"
export MOCK_BASE_URL="http://127.0.0.1:$mock_port"
export MOCK_PROVIDER_KEY="st-mock-key"
logs=$(mktemp -d)

"$BIN/infron-mock-provider" --bind "127.0.0.1:$mock_port" --expected-api-key "$MOCK_PROVIDER_KEY" >"$logs/mock.log" 2>&1 &
mock_pid=$!
"$BIN/infron" serve >"$logs/infron.log" 2>&1 &
api_pid=$!
cleanup() {
  kill "$api_pid" "$mock_pid" 2>/dev/null || true
  wait "$api_pid" "$mock_pid" 2>/dev/null || true
  if [ -n "${SCHEMATHESIS_GATEWAY_LOG:-}" ]; then cp "$logs/infron.log" "$SCHEMATHESIS_GATEWAY_LOG"; fi
  psql "$admin" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$logs"
}
trap cleanup EXIT

healthy() { python3 -c "import urllib.request,sys; urllib.request.urlopen('$base/health', timeout=1)" >/dev/null 2>&1; }
for _ in $(seq 1 100); do healthy && break; sleep 0.1; done
healthy || { echo "gateway did not start:"; cat "$logs/infron.log"; exit 1; }

# The model routes' account: credits and an inference key.
account=$("$BIN/infron" accounts create --name schemathesis-models)
key=$("$BIN/infron" keys create --account "$account" 2>/dev/null)
"$BIN/infron" credits grant --account "$account" --amount 1000 --reason "schemathesis" >/dev/null

# The tenant routes' account: its owner signs in and makes a management key.
owner_account=$("$BIN/infron" accounts create --name schemathesis-tenant)
owner_password="st-owner-$(head -c 9 /dev/urandom | od -An -tx1 | tr -d ' \n')"
echo "$owner_password" | "$BIN/infron" users add --email st-owner@example.com \
  --account "$owner_account" --role owner >/dev/null
operator_password=$("$BIN/infron" operators create --email st-operator@example.com)
# Signs in at $1 as $2 with password $3; prints the session cookie and its CSRF token.
sign_in() {
  BASE="$base" SIGNIN="$1" EMAIL="$2" PASSWORD="$3" python3 - <<'PY'
import http.cookiejar, json, os, urllib.request
base = os.environ["BASE"]
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
req = urllib.request.Request(base + os.environ["SIGNIN"], method="POST",
    data=json.dumps({"email": os.environ["EMAIL"], "password": os.environ["PASSWORD"]}).encode(),
    headers={"Content-Type": "application/json", "Origin": base})
signed = json.load(opener.open(req, timeout=30))
cookie = next(c for c in jar if c.name.endswith("infron_session"))
print(f"{cookie.name}={cookie.value}", signed["data"]["csrf_token"])
PY
}
read -r operator_cookie operator_csrf <<<"$(sign_in /api/v1/operator/auth/signin st-operator@example.com "$operator_password")"
read -r owner_cookie owner_csrf <<<"$(sign_in /api/v1/auth/signin st-owner@example.com "$owner_password")"
# The owner makes the management key with that session.
management_key=$(BASE="$base" COOKIE="$owner_cookie" CSRF="$owner_csrf" python3 - <<'PY'
import json, os, urllib.request
base = os.environ["BASE"]
req = urllib.request.Request(base + "/api/v1/keys", method="POST",
    data=json.dumps({"name": "schemathesis", "kind": "management"}).encode(),
    headers={"Content-Type": "application/json", "Origin": base, "Cookie": os.environ["COOKIE"],
             "X-CSRF-Token": os.environ["CSRF"]})
print(json.load(urllib.request.urlopen(req, timeout=30))["key"])
PY
)

examples="${SCHEMATHESIS_MAX_EXAMPLES:-10}"
# One worker per run (schemathesis' threads trip a CPython 3.11 bug in hypothesis), and the four
# runs side by side: what one changes does not reach another's account or session.
conformance=status_code_conformance,content_type_conformance,response_schema_conformance
run() {
  local name="$1" checks="$2"; shift 2
  "$venv/bin/schemathesis" run "$base/openapi.json" \
    --checks "$checks" \
    --phases examples,coverage,fuzzing \
    --max-examples "$examples" --seed 20261207 --workers 1 \
    --request-timeout 30 --suppress-health-check all --generation-database none --no-color \
    "$@" >"$logs/$name.out" 2>&1
}
run models "not_a_server_error,$conformance" -H "Authorization: Bearer $key" \
  --include-tag Chat --include-tag Embeddings --include-tag Responses --include-tag Messages \
  --include-tag Models --include-tag Usage --include-tag Description &
pids=($!)
# Origin as the dashboard sends it, so that sign-in and sign-up reach their logic (cross-site
# requests are refused with 403 before it).
run tenant "not_a_server_error,$conformance" -H "Authorization: Bearer $management_key" \
  -H "Origin: $base" --include-tag Keys --include-tag Account --include-tag Sign-in &
pids+=($!)
run operator "not_a_server_error,$conformance" -H "Cookie: $operator_cookie" \
  -H "X-CSRF-Token: $operator_csrf" -H "Origin: $base" \
  --include-tag Operator --include-tag Operations --generation-with-security-parameters false &
pids+=($!)
run session "$conformance" -H "Cookie: $owner_cookie" -H "X-CSRF-Token: $owner_csrf" \
  -H "Origin: $base" --include-tag Alerts --include-tag Credits --include-tag Account \
  --include-tag Sign-in --exclude-path /api/v1/auth/signout --exclude-path /api/v1/auth/signout-all \
  --generation-with-security-parameters false &
pids+=($!)
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
for name in models tenant operator session; do
  echo "[schemathesis] $name"
  cat "$logs/$name.out"
done
if [ "$status" != 0 ]; then
  echo "--- gateway log (last 50 lines)"; tail -50 "$logs/infron.log"
  exit 1
fi
