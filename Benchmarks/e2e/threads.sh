#!/bin/sh
# Thread scaling of one inference: `qsent eval` on the 300 side-by-side reviews (rows [::83][:300]),
# 1 and 2 threads interleaved, ROUNDS rounds, for each ISA in ISAS; prints reviews/s per run and
# the median of the per-round 2-thread ÷ 1-thread ratios. Needs an idle machine with >= 2 cores.
#
#   Benchmarks/e2e/threads.sh [OUT]     (OUT: also write the output there)
#
# Env: ROUNDS (5), ISAS ("best avx2": best = the CPU's default), NO_BUILD=1, SHARED (../shared).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
ROUNDS=${ROUNDS:-5}
ISAS=${ISAS:-best avx2}
[ "${NO_BUILD:-0}" = 1 ] || (cd "$ROOT" && swift build -c release --product qsent >/dev/null)
B=$(cd "$ROOT" && swift build -c release --show-bin-path)/qsent
run() {
    cd "$ROOT"
    echo "# $(date -u +%FT%TZ) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs," \
        "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -w 'avx2\|fma\|avx512f\|avx512bw\|avx512_vnni\|avx_vnni\|asimddp' | sort -u | xargs);" \
        "load $(cut -d' ' -f1-3 /proc/loadavg); qsent $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# Benchmarks/e2e/threads.sh (ROUNDS=$ROUNDS ISAS=\"$ISAS\"): qsent eval --model Quantizer/Models/distilbert-h384-imdb.qsent --data test.jsonl --stride 83 --limit 300 --threads 1|2 [--isa ISA] --json"
    for isa in $ISAS; do
        flag=""; [ "$isa" = best ] || flag="--isa $isa"
        ratios=""
        r=1
        while [ "$r" -le "$ROUNDS" ]; do
            line="isa $isa round $r:"
            one=0
            for t in 1 2; do
                # shellcheck disable=SC2086
                v=$("$B" eval --model Quantizer/Models/distilbert-h384-imdb.qsent --data "$SHARED/data/imdb/test.jsonl" \
                    --stride 83 --limit 300 --threads $t $flag --json |
                    python3 -c 'import json,sys; print("%.2f" % json.load(sys.stdin)["reviews_per_s"])')
                line="$line $t thread(s) $v reviews/s;"
                [ $t = 1 ] && one=$v
            done
            ratio=$(python3 -c "print('%.3f' % ($v / $one))")
            echo "$line ratio $ratio"
            ratios="$ratios $ratio"
            r=$((r + 1))
        done
        echo "isa $isa: 2 threads ÷ 1 thread, median of per-round ratios $(python3 -c "import statistics,sys; print('%.2f' % statistics.median(map(float, sys.argv[1:])))" $ratios)"
    done
    echo "# load at end $(cut -d' ' -f1-3 /proc/loadavg)"
}
if [ $# -ge 1 ]; then run | tee "$1"; else run; fi
