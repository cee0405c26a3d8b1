#!/usr/bin/env bash
# Set-up for a fresh machine: uv and the locked Python environment; with --services, also make
# sure PostgreSQL, Redis and NATS JetStream answer on loopback and Tesseract is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
uv sync --frozen --quiet

if [[ "${1:-}" == "--services" ]]; then
  bash infra/services.sh
fi
