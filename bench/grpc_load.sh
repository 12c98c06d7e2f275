#!/usr/bin/env bash
# GetRanking latency under load: `zonerank demo` on a fresh SQLite file, then h2load with a
# gRPC body (a cached page of 20 entries): one request at a time on one connection, then a
# fixed rate (5,000 req/s by default) over 10 connections, then as fast as it goes.
#
# Needs: a release build (`cargo build --release -p zonerank`), h2load and nghttp (Debian
# package nghttp2-client), python3.
#
# Environment: ZONERANK (binary, default target/release/zonerank), PORT (default 50071),
# RATE (req/s of the fixed-rate run, default 5000), REQUESTS (fixed-rate run, default 50000),
# MAX_REQUESTS (unlimited run, default 200000), STREAMS (concurrent streams per connection in
# those two runs, default 10), SEQUENTIAL (one-at-a-time run, default 2000).
#
# The demo loads and ranks its dataset, then stops; `zonerank serve` serves the same database
# file for the load. TOKEN=1 (the cost of auth): that server verifies bearer tokens against a
# key set made here (`zonerank auth keygen`), and every request carries a viewer's token
# (`zonerank auth token`); unset, the same binary runs open on loopback. Run both, one after
# the other, to compare.
#
# BACKEND=postgres: the same on PostgreSQL + Redis (127.0.0.1:5432 as user postgres, and
# REDIS_URL or redis://127.0.0.1:6379): a fresh database and a key prefix of the run's own,
# both dropped at the end.
set -euo pipefail

cd "$(dirname "$0")/.."
ZONERANK=${ZONERANK:-target/release/zonerank}
PORT=${PORT:-50071}
REQUESTS=${REQUESTS:-50000}
MAX_REQUESTS=${MAX_REQUESTS:-200000}
STREAMS=${STREAMS:-10}
SEQUENTIAL=${SEQUENTIAL:-2000}
RATE=${RATE:-5000}
TOKEN=${TOKEN:-}
CONNECTIONS=10
URL="http://127.0.0.1:${PORT}/zonerank.v1.RankingService/GetRanking"

for tool in h2load nghttp python3; do
  command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install nghttp2-client python3)" >&2; exit 1; }
done
[ -x "$ZONERANK" ] || { echo "no $ZONERANK: cargo build --release -p zonerank" >&2; exit 1; }

work=$(mktemp -d)
server=
store=(--database-url "sqlite://${work}/demo.db?mode=rwc")
pg_db=
redis=${REDIS_URL:-redis://127.0.0.1:6379}
prefix="zonerank-load-$$:"
if [ "${BACKEND:-sqlite}" = postgres ]; then
  pg_db="zonerank_load_$$"
  psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "CREATE DATABASE ${pg_db}"
  store=(--database-url "postgres://postgres@127.0.0.1:5432/${pg_db}" --redis-url "$redis"
    --redis-prefix "$prefix")
  echo "backend: PostgreSQL database ${pg_db}, Redis ${redis} under ${prefix}"
  RUST_LOG=warn "$ZONERANK" migrate --database-url "postgres://postgres@127.0.0.1:5432/${pg_db}" >/dev/null 2>&1
fi
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  if [ -n "$pg_db" ]; then
    psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS ${pg_db} WITH (FORCE)" || true
    redis-cli -u "$redis" --scan --pattern "${prefix}*" | xargs -r redis-cli -u "$redis" DEL >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The demo loads its dataset through the API, ranks it, then keeps serving.
env -u REDIS_URL -u DATABASE_URL -u OTEL_EXPORTER_OTLP_ENDPOINT RUST_LOG=warn \
  "$ZONERANK" demo --listen "127.0.0.1:${PORT}" \
  "${store[@]}" >"$work/demo.log" 2>&1 &
server=$!
for _ in $(seq 1 600); do
  grep -q "^Serving on" "$work/demo.log" && break
  kill -0 "$server" 2>/dev/null || { cat "$work/demo.log" >&2; exit 1; }
  sleep 0.1
done
grep -q "^Serving on" "$work/demo.log" || { echo "the demo did not come up" >&2; exit 1; }
kill "$server" && wait "$server" 2>/dev/null || true
server=

auth=()
headers=(-H "content-type: application/grpc" -H "te: trailers")
if [ -n "$TOKEN" ]; then
  "$ZONERANK" auth keygen --out "$work/keys" >/dev/null
  auth=(--auth-jwks "$work/keys/jwks.json" --auth-issuer zonerank --auth-audience zonerank)
  token=$("$ZONERANK" auth token --key "$work/keys/signing-key.pem" --sub bench --role viewer --ttl 1h)
  headers+=(-H "authorization: Bearer ${token}")
  echo "auth on: every request carries a viewer's EdDSA token (${#token} bytes)"
else
  echo "auth off: open on loopback"
fi
env -u REDIS_URL -u DATABASE_URL -u OTEL_EXPORTER_OTLP_ENDPOINT -u ZONERANK_AUTH_JWKS RUST_LOG=warn \
  "$ZONERANK" serve --listen "127.0.0.1:${PORT}" "${auth[@]}" \
  "${store[@]}" >"$work/serve.log" 2>&1 &
server=$!

# GetRankingRequest{scheme_id: "henan-zone-assessment", period: "2023", page_size: 20} in a
# gRPC frame: 1 byte "not compressed", 4 bytes big-endian length, the protobuf message.
python3 - "$work/request.bin" <<'EOF'
import struct, sys
def string(field, text):
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data
message = string(1, "henan-zone-assessment") + string(2, "2023") + bytes([5 << 3 | 0, 20])
open(sys.argv[1], "wb").write(b"\0" + struct.pack(">I", len(message)) + message)
EOF

# h2load counts HTTP 200s only; the gRPC status is in the trailers. Asked until the server
# answers.
status=
for _ in $(seq 1 300); do
  status=$(nghttp -v "${headers[@]}" -d "$work/request.bin" "$URL" 2>/dev/null | grep -ao "grpc-status: [0-9]*" | head -1 || true)
  [ -n "$status" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ "$status" = "grpc-status: 0" ] || { echo "GetRanking did not answer OK: ${status:-no grpc-status}" >&2; exit 1; }
echo "GetRanking answers ${status} (OK)"

# Per-request times from h2load's log: median and p99 in ms, and every HTTP status seen.
summarize() {
  python3 - "$1" <<'EOF'
import collections, statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
micros = sorted(int(r[2]) for r in rows)
codes = collections.Counter(r[1] for r in rows)
p = lambda q: micros[min(len(micros) - 1, int(q * len(micros)))] / 1000
print(f"  requests {len(micros)}, HTTP status {dict(codes)}, median {statistics.median(micros) / 1000:.2f} ms, "
      f"p99 {p(0.99):.2f} ms, max {micros[-1] / 1000:.2f} ms")
EOF
}

run() {
  local name=$1
  shift
  echo "+ h2load $*"
  h2load "$@" "${headers[@]}" -d "$work/request.bin" --log-file "$work/$name.tsv" "$URL" \
    | grep -E "^finished in|^requests:|^status codes:"
  summarize "$work/$name.tsv"
}

# Warm-up: the first call ranks from the store and fills the cache; the rest are cached pages.
h2load -n 1000 -c "$CONNECTIONS" -m 1 "${headers[@]}" -d "$work/request.bin" "$URL" >/dev/null

echo "== one at a time: 1 connection, 1 stream"
run sequential -n "$SEQUENTIAL" -c 1 -m 1
echo "== fixed rate: ${RATE} req/s over ${CONNECTIONS} connections"
run rate -n "$REQUESTS" -c "$CONNECTIONS" -m "$STREAMS" --rps $((RATE / CONNECTIONS))
echo "== unlimited: ${CONNECTIONS} connections, ${STREAMS} streams each"
run max -n "$MAX_REQUESTS" -c "$CONNECTIONS" -m "$STREAMS"
