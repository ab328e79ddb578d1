#!/bin/bash
# Runs every peer engine on the stand-in model and on the random 768-dim DistilBERT,
# one after another (never in parallel: they would share the 2 cores).
#   Benchmarks/peers/run_all.sh [OUT_DIR]        env: PY, LIMIT, STAND, R768
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PY=${PY:-/tmp/venv/bin/python}
OUT=${1:-/tmp/qsent-peers/results}
LIMIT=${LIMIT:-1000}
STAND=${STAND:-"$ROOT/../shared/models/distilbert-h384-imdb"}
[ -d "$STAND" ] || STAND=/work/shared/models/distilbert-h384-imdb
R768=${R768:-/tmp/qsent-random/distilbert768}
DATA=${DATA:-"$(dirname "$(dirname "$STAND")")/data/imdb/test.jsonl"}
mkdir -p "$OUT"
if [ ! -f "$R768/model.safetensors" ]; then
  "$PY" "$ROOT/Tests/Fixtures/make_random_models.py" --out "$(dirname "$R768")" \
      --models distilbert768 --no-oracle
fi
for eng in ort-int8 torch-dynamic-int8 torch-fp32; do
  "$PY" "$HERE/peer_bench.py" --model "$STAND" --data "$DATA" --engine $eng --limit "$LIMIT" \
      > "$OUT/standin-$eng.json"
  cat "$OUT/standin-$eng.json"
done
for eng in ort-int8 torch-dynamic-int8 torch-fp32; do
  "$PY" "$HERE/peer_bench.py" --model "$R768" --tokenizer "$STAND" --data "$DATA" --engine $eng \
      --limit "$LIMIT" > "$OUT/r768-$eng.json"
  cat "$OUT/r768-$eng.json"
done
