#!/bin/sh
# Cold start figures on a release build linked as the .deb ships it (--static-swift-stdlib):
#
#   Benchmarks/daemon/coldstart.sh [BLOB]     (default: Quantizer/Models/distilbert-h384-imdb.qsent)
#
# Socket-activated qsentd (systemd-socket-activate), connect -> first answer; in-process
# `qsent classify --model`; `qsent --version`; callgrind instructions per load phase.
# Env: RUNS (10), NO_BUILD=1 (reuse the build), NO_CALLGRIND=1, SCRATCH (.build-static),
#      OUT (Benchmarks/results/<date>-coldstart.json).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODEL=${1:-$ROOT/Quantizer/Models/distilbert-h384-imdb.qsent}
SCRATCH=${SCRATCH:-$ROOT/.build-static}
if [ "${NO_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product qsentd >/dev/null)
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --product qsent >/dev/null)
fi
BIN=$(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$SCRATCH" --show-bin-path)
OUT=${OUT:-$ROOT/Benchmarks/results/$(date -u +%Y-%m-%d)-coldstart.json}
CG=--callgrind
[ "${NO_CALLGRIND:-0}" = 1 ] && CG=
echo "host: $(nproc) cores, $(uname -m), uptime: $(uptime)"
python3 "$ROOT/Benchmarks/daemon/coldstart.py" --bin "$BIN" --model "$MODEL" --runs "${RUNS:-10}" --json "$OUT" $CG
