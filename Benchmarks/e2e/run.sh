#!/usr/bin/env bash
# qsent end-to-end benchmark: int8 vs FP32, peers, memory, load time, at dim 384 and 768.
# See Benchmarks/README.md. Usage:
#   Benchmarks/e2e/run.sh                 # release build, then everything (~30-60 min on 2 busy cores)
# Environment (all optional):
#   ROUNDS=3 ROUNDS768=<ROUNDS>  interleaved rounds at dim 384 / 768
#   STEP=1 STEP768=<STEP>  every STEP-th review of the 1,000-review subset (1 = all; 5 = 200
#                  reviews, the same ones for qsent and peers); STEP must divide 1000
#   PEERS=ort-int8,torch-dynamic-int8   PEER_ROUNDS=0 (peers in the first N rounds; 0 = all)
#   THREADS=2      LOAD_RUNS=20
#   SKIP_BUILD=1   use the existing .build/release binaries
#   SKIP_768=1     only the 384 model
#   PY=/tmp/venv/bin/python   peers' Python (peers are skipped with a message if missing)
#   SHARED=<root>/../shared   data and models;   WORK=/tmp/qsent-e2e   blobs made here
#   BLOB=$ROOT/Quantizer/Models/distilbert-h384-imdb.qsent (made with qsent-quantize if missing)
#   R768=/tmp/qsent-random/distilbert768 (made with Tests/Fixtures/make_random_models.py if missing)
#   OUT=Benchmarks/results/<UTC date>-e2e   (writes OUT.md and OUT.json)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

SHARED=${SHARED:-"$root/../shared"}
[ -d "$SHARED/data/imdb" ] || SHARED=${QSENT_SHARED:-/work/shared}
DATA=${DATA:-"$SHARED/data/imdb/test.jsonl"}
HF=${HF:-"$SHARED/models/distilbert-h384-imdb"}
PY=${PY:-/tmp/venv/bin/python}
WORK=${WORK:-/tmp/qsent-e2e}
BLOB=${BLOB:-"$root/Quantizer/Models/distilbert-h384-imdb.qsent"}
R768=${R768:-/tmp/qsent-random/distilbert768}
BLOB768=${BLOB768:-"$WORK/distilbert768.qsent"}
OUT=${OUT:-"$root/Benchmarks/results/$(date -u +%Y-%m-%d)-e2e"}
ROUNDS=${ROUNDS:-3}
ROUNDS768=${ROUNDS768:-$ROUNDS}
STEP=${STEP:-1}
STEP768=${STEP768:-$STEP}
PEERS=${PEERS:-ort-int8,torch-dynamic-int8}
PEER_ROUNDS=${PEER_ROUNDS:-0}
THREADS=${THREADS:-2}
LOAD_RUNS=${LOAD_RUNS:-20}

for f in "$DATA" "$HF/config.json"; do
  [ -e "$f" ] || { echo "missing $f: set SHARED=<dir with data/imdb and models/>" >&2; exit 1; }
done
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  echo "[e2e] swift build -c release" >&2
  swift build -c release >&2
fi
bin="$(swift build -c release --show-bin-path)"
[ -x "$bin/qsent" ] && [ -x "$bin/qsent-quantize" ] || { echo "no release binaries in $bin" >&2; exit 1; }
mkdir -p "$WORK" "$(dirname "$OUT")" "$(dirname "$BLOB")"

if [ ! -f "$BLOB" ]; then
  echo "[e2e] quantizing $HF -> $BLOB" >&2
  "$bin/qsent-quantize" "$HF" -o "$BLOB" >&2
fi

extra=()
if [ "${SKIP_768:-0}" != 1 ]; then
  if [ ! -f "$R768/model.safetensors" ]; then
    py3=$PY; [ -x "$py3" ] || py3=python3   # --no-oracle needs only numpy
    echo "[e2e] writing random distilbert768 to $R768" >&2
    "$py3" Tests/Fixtures/make_random_models.py --out "$(dirname "$R768")" --models distilbert768 --no-oracle >&2
  fi
  if [ ! -f "$BLOB768" ] || [ "$BLOB768" -ot "$R768/model.safetensors" ]; then
    echo "[e2e] quantizing $R768 -> $BLOB768" >&2
    "$bin/qsent-quantize" "$R768" -o "$BLOB768" --force >&2
  fi
  extra=(--blob768 "$BLOB768" --hf768 "$R768" --rounds768 "$ROUNDS768" --step768 "$STEP768")
fi

cmdline="SKIP_768=${SKIP_768:-0} ROUNDS=$ROUNDS ROUNDS768=$ROUNDS768 STEP=$STEP STEP768=$STEP768 PEERS=$PEERS PEER_ROUNDS=$PEER_ROUNDS THREADS=$THREADS LOAD_RUNS=$LOAD_RUNS Benchmarks/e2e/run.sh"
python3 "$here/e2e.py" --root "$root" --qsent "$bin/qsent" --blob "$BLOB" --hf "$HF" --data "$DATA" \
  --stride 25 --step "$STEP" --threads "$THREADS" --rounds "$ROUNDS" --load-runs "$LOAD_RUNS" \
  --peer-python "$PY" --peers "$PEERS" --peer-rounds "$PEER_ROUNDS" --out "$OUT" --command "$cmdline" "${extra[@]}"
echo "[e2e] wrote $OUT.md and $OUT.json" >&2
