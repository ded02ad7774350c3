#!/usr/bin/env bash
# One command: installs the load generator and the peers into a cache directory, builds Infron,
# and measures direct / Portkey / LiteLLM / Infron against the same nginx upstream with the same
# oha loads in one run. Writes bench/compare/RESULTS.md (see docs/benchmarks.md for the method).
#
#   bench/compare/run.sh                      # everything, 10 s per load
#   DURATION=60 SYSTEMS=infron bench/compare/run.sh
#
# Run it on a quiet machine: everything (load generator, upstream, gateway, Redis, Postgres)
# shares the same cores, which is the point of measuring CPU per request.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infron/target}"
CACHE="${INFRON_BENCH_CACHE:-$HOME/.cache/infron/bench}"
SYSTEMS="${SYSTEMS:-direct portkey litellm infron}"
LITELLM_VERSION="${LITELLM_VERSION:-1.74.15}"
PORTKEY_VERSION="${PORTKEY_VERSION:-1.15.2}"
mkdir -p "$CACHE"
log() { echo "[compare] $*" >&2; }

scripts/ensure-services.sh
SUDO=""; [ "$(id -u)" != "0" ] && command -v sudo >/dev/null && SUDO=sudo
if ! command -v nginx >/dev/null; then
  log "installing nginx"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null \
    || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
if ! command -v oha >/dev/null && [ ! -x "$CACHE/cargo/bin/oha" ]; then
  log "installing oha (cargo install, a few minutes)"
  cargo install oha --locked --version 1.16.0 --root "$CACHE/cargo" >/dev/null
fi
export PATH="$CACHE/cargo/bin:$PATH"
case " $SYSTEMS " in *" litellm "*)
  if [ ! -x "$CACHE/litellm/bin/litellm" ]; then
    log "installing LiteLLM $LITELLM_VERSION"
    python3 -m venv "$CACHE/litellm"
    "$CACHE/litellm/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
  fi;;
esac
case " $SYSTEMS " in *" portkey "*)
  if [ ! -f "$CACHE/portkey/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
    log "installing Portkey gateway $PORTKEY_VERSION"
    mkdir -p "$CACHE/portkey"
    npm install --prefix "$CACHE/portkey" --no-audit --no-fund "@portkey-ai/gateway@$PORTKEY_VERSION" >/dev/null
  fi;;
esac
case " $SYSTEMS " in *" infron "*)
  log "building Infron (release)"
  cargo build --release --bin infron;;
esac

ulimit -n 65536 2>/dev/null || true
out="$(mktemp)"
SYSTEMS="$SYSTEMS" python3 bench/compare/run.py "$CACHE" > "$out"
python3 bench/compare/report.py "$out" > bench/compare/RESULTS.md
cat bench/compare/RESULTS.md
