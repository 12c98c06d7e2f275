#!/usr/bin/env bash
# The national-scale harness: N enterprises (default 500,000) end to end on PostgreSQL + Redis,
# every step against its peer in the same run (raw COPY, pandas + pymcdm). See bench/national.py.
#   bench/national.sh 100000 [--perf DIR] [--keep]   (options after N go to national.py)
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and Redis on 127.0.0.1:6379, as the
# tests do; PG_HOST and REDIS_URL point elsewhere.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-500000}"
shift || true
cargo build --release --locked -p zonerank -p zonerank-ingestion -p zonerank-metrics -p zonerank-ranking
VENV=target/pyvenv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q -r bench/requirements.txt
exec "$VENV/bin/python" bench/national.py --n "$N" --pg-host "${PG_HOST:-127.0.0.1}" \
  --redis "${REDIS_URL:-redis://127.0.0.1:6379}" "$@"
