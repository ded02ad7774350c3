#!/usr/bin/env bash
# Runs the whole test suite: unit and end-to-end tests of every crate, the dashboard in a real
# browser, then the client compatibility suite (scripts/sdk-tests.sh: the official OpenAI and
# Anthropic SDKs, LiteLLM, LangChain and the Vercel AI SDK against the gateway), then
# schemathesis against the gateway's OpenAPI document. Needs nothing
# but Rust: starts (and if needed installs) PostgreSQL and Redis, and installs the dashboard's
# npm packages and Debian's chromium and chromium-driver, first. Each test uses its own database
# and Redis prefix,
# so running it twice in a row on one server is fine.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
scripts/ensure-services.sh
scripts/ensure-web.sh --browser
# The build must bundle the dashboard's front-end packages, not fall back to pages without them.
export INFRON_REQUIRE_WEB_ASSETS=1

# The Dockerfile's dependency layer must load the workspace (no Docker engine needed).
python3 scripts/check-dockerfile.py

# The compose file must stay valid; checked when a docker client with compose is installed.
if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
  INFRON_KEY_SECRET=compose-config-check-0123456789abcdef docker compose config -q
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

if [ -x scripts/sdk-tests.sh ]; then
  scripts/sdk-tests.sh
fi

# The gateway against its own OpenAPI document (GET /openapi.json): schemathesis generates
# requests for every documented operation; no answer may be a server error or differ from the
# document.
scripts/schemathesis.sh

# A 2-minute soak: moderate load with provider faults and one Redis restart (its own
# redis-server), checking memory, descriptors, that every request is charged once and that the
# ledger verifies. The full 30-minute run is `bench/soak/run.sh` (docs/benchmarks.md).
SOAK_SECS="${INFRON_CI_SOAK_SECS:-120}" SOAK_PROFILE=debug \
  SOAK_RESULTS="$CARGO_TARGET_DIR/soak-RESULTS.md" bench/soak/run.sh
