#!/usr/bin/env bash
# Streams: 10,000 open streams' memory, idle memory, per-chunk relay cost and time-to-first-chunk
# overhead (method in docs/benchmarks.md).
#   bench/streams/run.sh                      # 10,000 streams, one word every 2 s
#   STREAMS=2000 CHUNK_DELAY_MS=500 bench/streams/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
scripts/ensure-services.sh
cargo build --release --quiet --bin infron --bin infron-mock-provider
# Every stream holds a client socket, a gateway socket each side and a provider socket: the
# gateway needs two descriptors per stream. Raise the soft limit as far as the hard one allows
# (where the hard limit is 20,000, as in this project's sandbox, about 9,900 streams fit).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec python3 bench/streams/run.py
