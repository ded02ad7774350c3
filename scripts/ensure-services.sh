#!/usr/bin/env bash
# Makes sure PostgreSQL (127.0.0.1:5432, user postgres, trust auth for local TCP) and Redis
# (127.0.0.1:6379) are installed and running. Installs them with apt-get when missing.
# Idempotent: does nothing when both already answer.
set -euo pipefail

log() { echo "[services] $*" >&2; }
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; }
pg_login() { psql "postgres://postgres@127.0.0.1:5432/postgres" -qtAc "select 1" >/dev/null 2>&1; }

if ! pg_ready; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing PostgreSQL"
    apt_install postgresql postgresql-client
  fi
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -z "$version" ]; then
    version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
    $SUDO pg_createcluster "$version" main >/dev/null
  fi
  log "starting PostgreSQL $version"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
if ! pg_login; then
  # A fresh Debian cluster asks for passwords over TCP: trust local TCP for the tests.
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  log "allowing trust auth for 127.0.0.1 in $hba"
  $SUDO sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  for _ in $(seq 1 10); do pg_login && break; sleep 1; done
fi
pg_login || { log "PostgreSQL is not reachable as postgres@127.0.0.1:5432"; exit 1; }

if ! (command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG); then
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing Redis"
    apt_install redis-server
  fi
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 20); do redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && break; sleep 0.5; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG || { log "Redis is not reachable on 127.0.0.1:6379"; exit 1; }
log "PostgreSQL and Redis are up"
