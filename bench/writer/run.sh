#!/usr/bin/env bash
# The ledger writer alone: a prepared backlog of settlements in the journal, then how fast the
# writer posts it to Postgres (target: over 20,000 settlements/s). Method in docs/benchmarks.md.
#   bench/writer/run.sh [--records 200000] [--accounts 100] [--writers 1]
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
scripts/ensure-services.sh
cargo run --release --quiet -p infron-billing --example writer_bench -- "$@"
