#!/usr/bin/env bash
# qsent side-by-side benchmark: qsent int8 / FP32, ONNX Runtime int8 / FP32, PyTorch FP32 /
# dynamic int8, on the same reviews, in interleaved rounds, at dim 384 and 768.
# Writes Benchmarks/results/<UTC date>/{sidebyside.md,sidebyside.json,*.png}.
# See Benchmarks/README.md ("sidebyside/"). Usage:
#   Benchmarks/sidebyside/run.sh                 # the full run (3 rounds; needs an idle machine)
#   Benchmarks/sidebyside/run.sh --help          # every option
#   Benchmarks/sidebyside/run.sh --avx2          # also qsent int8 on its AVX2 kernels
# Environment: PY=/tmp/venv/bin/python (torch, transformers, onnxruntime, onnx, matplotlib).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
PY=${PY:-/tmp/venv/bin/python}
if [ ! -x "$PY" ]; then
  echo "no Python at $PY: make the venv (Benchmarks/peers/README.md) or set PY=" >&2
  exit 1
fi
exec "$PY" "$here/sidebyside.py" "$@"
