#!/usr/bin/env bash
# Start PostgreSQL, Redis and NATS (JetStream) on their default loopback ports from Debian's
# packages when they are not already answering, and install Tesseract OCR and Chromium (for the
# browser tests). Idempotent: services that answer are left alone (CI and dev boxes share them;
# tests isolate themselves).
# For a container setup instead, see infra/compose.yaml.
set -euo pipefail

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {
  local name=$1 port=$2
  for _ in $(seq 1 50); do
    if listening "$port"; then return 0; fi
    sleep 0.2
  done
  echo "services: $name did not come up on 127.0.0.1:$port" >&2
  return 1
}

APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED == 0 ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! listening 5432; then
  fresh=0
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt_install postgresql
    fresh=1
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [[ $fresh == 1 ]]; then
    # Loopback trust auth, as on our dev machines and CI; never do this on a shared host.
    sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' \
      "/etc/postgresql/$version/main/pg_hba.conf"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$version" main start
  wait_for PostgreSQL 5432
  if [[ $fresh == 1 ]]; then
    su postgres -c "createdb test" || true
  fi
fi

if ! listening 6379; then
  command -v redis-server >/dev/null 2>&1 || apt_install redis-server
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  wait_for Redis 6379
fi

if ! listening 4222; then
  [[ -x /usr/sbin/nats-server ]] || apt_install nats-server
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server
  wait_for NATS 4222
fi

if ! command -v tesseract >/dev/null 2>&1; then
  apt_install tesseract-ocr
fi

# The dashboard's browser tests (tests/browser) drive Debian's Chromium through Playwright, which
# never downloads a browser of its own here.
if [[ ! -x /usr/bin/chromium ]]; then
  apt_install chromium
fi

# The browser tests' accessibility scan runs Deque's axe-core (pinned) inside that Chromium.
AXE_VERSION=4.11.0
AXE_DIR="$(cd "$(dirname "$0")/.." && pwd)/.cache/axe-core-$AXE_VERSION"
if [[ ! -f "$AXE_DIR/node_modules/axe-core/axe.min.js" ]]; then
  command -v npm >/dev/null 2>&1 || apt_install npm
  npm install --silent --no-audit --no-fund --prefix "$AXE_DIR" "axe-core@$AXE_VERSION" >/dev/null
fi

echo "services: PostgreSQL :5432, Redis :6379, NATS :4222 up; tesseract $(tesseract --version 2>&1 | head -n 1); chromium and axe-core $AXE_VERSION installed"
