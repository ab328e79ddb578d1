#!/bin/sh
# qsentd soak (issue 8): honest pipelining/batch/interactive clients, bad lines, clients that drop
# mid-request, reloads (protocol op, SIGHUP, model replaced by rename) for MINUTES, sampling
# RssAnon, fds and threads every 10 s. See soak.py for the accounting.
#
#   Benchmarks/daemon/soak.sh MINUTES [MODEL.qsent]   (default: Quantizer/Models/distilbert-h384-imdb.qsent)
#
# Env: THREADS (2), NO_BUILD=1 to skip `swift build -c release`, PYTHON_PLOT (/tmp/venv/bin/python,
# needs matplotlib). Writes Benchmarks/results/soak-<date>-<M>min.{json,md,png}; exits 1 unless
# 0 lost, 0 mismatched, every bad line answered with an error and a clean SIGTERM exit.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 MINUTES [MODEL.qsent]" >&2; exit 64; }
MINUTES=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${QSENT_SHARED:-$ROOT/../shared}
MODEL=${2:-$ROOT/Quantizer/Models/distilbert-h384-imdb.qsent}
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && swift build -c release --product qsentd >/dev/null)
fi
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
IMDB=""
[ -f "$SHARED/data/imdb/test.jsonl" ] && IMDB="--imdb $SHARED/data/imdb/test.jsonl"
mkdir -p "$ROOT/Benchmarks/results"
OUT="$ROOT/Benchmarks/results/soak-$(date -u +%Y-%m-%dT%H%MZ)-${MINUTES}min"
echo "host: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); soak for $MINUTES min -> $OUT.*"
rc=0
# shellcheck disable=SC2086
python3 "$ROOT/Benchmarks/daemon/soak.py" --qsentd "$BIN/qsentd" --model "$MODEL" $IMDB \
    --minutes "$MINUTES" --threads "${THREADS:-2}" --out "$OUT" || rc=$?
PY=${PYTHON_PLOT:-/tmp/venv/bin/python}
if [ -f "$OUT.json" ]; then
    "$PY" "$ROOT/Benchmarks/daemon/soak_plot.py" "$OUT" || echo "no plot: $PY cannot import matplotlib" >&2
fi
exit $rc
