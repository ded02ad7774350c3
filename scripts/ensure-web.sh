#!/usr/bin/env bash
# Installs what the dashboard needs at build and test time:
#  - the front-end packages from the npm registry (`npm ci --prefix web`, from web/package.json
#    and web/package-lock.json), which crates/api/build.rs bundles into the binary; installs
#    Node.js and npm with apt-get when missing;
#  - with --browser, Debian's chromium and chromium-driver for the browser tests
#    (tests/browser); never a browser download.
# Idempotent: does nothing when everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[web] $*" >&2; }
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if ! command -v npm >/dev/null 2>&1; then
  log "installing Node.js and npm"
  apt_install nodejs npm
fi
# npm ci again whenever the lockfile changed since the last install.
if [ ! -f web/node_modules/.package-lock.json ] || [ web/package-lock.json -nt web/node_modules/.package-lock.json ]; then
  log "npm ci --prefix web"
  npm ci --prefix web --no-audit --no-fund --loglevel=error >&2
fi

if [ "${1:-}" = "--browser" ]; then
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    log "installing chromium and chromium-driver"
    apt_install chromium chromium-driver
  fi
fi
