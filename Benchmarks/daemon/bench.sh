#!/bin/sh
# qsentd figures from a release build. Rerun after engine changes:
#
#   Benchmarks/daemon/bench.sh [MODEL]      (default: $QSENT_BENCH_MODEL, else ../shared HF folder)
#
# Env: REQUESTS (10000), TEXT_BYTES (256: IMDB test reviews cut to this many bytes),
#      CLIENTS (1,16), THREADS (2), NO_BUILD=1 to skip `swift build -c release`.
# Writes Benchmarks/daemon/results-<date>.json next to this script.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${QSENT_SHARED:-$ROOT/../shared}
MODEL=${1:-${QSENT_BENCH_MODEL:-$SHARED/models/distilbert-h384-imdb}}
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && swift build -c release --product qsentd >/dev/null)
fi
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
IMDB=""
[ -f "$SHARED/data/imdb/test.jsonl" ] && IMDB="--imdb $SHARED/data/imdb/test.jsonl"
OUT="$ROOT/Benchmarks/daemon/results-$(date -u +%Y%m%dT%H%M%SZ).json"
echo "host: $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
python3 "$ROOT/Benchmarks/daemon/loadgen.py" --qsentd "$BIN/qsentd" --model "$MODEL" $IMDB \
    --requests "${REQUESTS:-10000}" --text-bytes "${TEXT_BYTES:-256}" --clients "${CLIENTS:-1,16}" \
    --threads "${THREADS:-2}" --json "$OUT"
echo "figures written to $OUT"
