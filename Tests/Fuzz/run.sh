#!/bin/sh
# Runs the libFuzzer harnesses (issue 8), each for SECONDS, and prints executions, coverage
# and crashes per harness.
#
#   Tests/Fuzz/run.sh SECONDS [HARNESS ...]    HARNESS: protocol tokenizer safetensors config blob
#                                              (default: all five, one after the other)
#
# Env: NO_BUILD=1 skips the build; OPT (default -O: Swift code optimized, still fully
#      instrumented; OPT=-Onone for debugging a reproducer);
#      FUZZ_WORK (default .build/fuzz-work under this directory) keeps the grown corpora between
#      runs; FUZZ_ARGS adds libFuzzer flags (e.g. "-jobs=2 -workers=2"); NICE (19).
# dict/HARNESS.dict, when present, is passed as -dict= (the format's keys, so mutations reach fields).
# The committed seeds in corpus/HARNESS are read, never written: new inputs go to FUZZ_WORK.
# Crash reproducers go to FUZZ_WORK/HARNESS-artifacts/; copy them into corpus/HARNESS/ (as
# crash-*) so they become regression seeds. Exit status: 0 when no harness crashed, 1 otherwise.
# Results of each run are appended as TSV to FUZZ_WORK/results.tsv.
set -eu
[ $# -ge 1 ] || { echo "usage: $0 SECONDS [protocol|tokenizer|safetensors|config|blob ...]" >&2; exit 64; }
SECONDS_EACH=$1; shift
HERE=$(cd "$(dirname "$0")" && pwd)
PKG=$HERE/Harnesses
# `--sanitize=fuzzer` makes SwiftPM link libFuzzer's main; but `--sanitize=fuzzer --sanitize=address`
# hands swiftc two -sanitize= flags and the last one wins (no coverage, or no ASan), so the
# combined flag goes last, via -Xswiftc.
FLAGS="-c debug --sanitize=fuzzer -Xswiftc ${OPT:--O} -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address"
WORK=${FUZZ_WORK:-$PKG/.build/fuzz-work}
HARNESSES=${*:-protocol tokenizer safetensors config blob}
# Swift's crash handler would take every deadly signal (libFuzzer leaves a handler that is
# already installed alone) and its memory server then trips ASan: the report names
# CrashHandlerLinux.cpp instead of the fault. Off, a trap or fault reaches ASan and libFuzzer,
# which print its stack.
export SWIFT_BACKTRACE=${SWIFT_BACKTRACE:-enable=no}
if [ "${NO_BUILD:-0}" != 1 ]; then
    echo "building harnesses ($FLAGS) ..." >&2
    # shellcheck disable=SC2086
    (cd "$PKG" && nice -n "${NICE:-19}" swift build $FLAGS 2>&1 | grep -v "Cannot export local symbol" >&2)
fi
# shellcheck disable=SC2086
BIN=$(cd "$PKG" && swift build $FLAGS --show-bin-path)
mkdir -p "$WORK"
crashed=0
printf '%-12s %8s %12s %10s %7s %7s %7s %8s\n' harness seconds executions exec/s cov ft corpus crashes
for h in $HARNESSES; do
    case $h in
        protocol) exe=FuzzProtocol ;; tokenizer) exe=FuzzTokenizer ;; safetensors) exe=FuzzSafetensors ;;
        config) exe=FuzzConfig ;; blob) exe=FuzzBlob ;;
        *) echo "unknown harness '$h' (protocol tokenizer safetensors config blob)" >&2; exit 64 ;;
    esac
    mkdir -p "$WORK/$h" "$WORK/$h-artifacts"
    log=$WORK/$h.log
    rc=0
    dict=
    [ ! -f "$HERE/dict/$h.dict" ] || dict=-dict=$HERE/dict/$h.dict
    # -max_len: room for the largest seed (the tiny blob, 11 KB) and a bit more.
    # shellcheck disable=SC2086
    nice -n "${NICE:-19}" "$BIN/$exe" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -timeout=30 \
        -rss_limit_mb=4096 -max_len=32768 -artifact_prefix="$WORK/$h-artifacts/" $dict ${FUZZ_ARGS:-} \
        "$WORK/$h" "$HERE/corpus/$h" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    # crash-, leak-, timeout- and oom- files are failures; slow-unit- files (an input slower
    # than 10 s, usually the machine stalling this process) are only reported.
    crashes=$(find "$WORK/$h-artifacts" -type f ! -name 'slow-unit-*' | wc -l)
    slow=$(find "$WORK/$h-artifacts" -type f -name 'slow-unit-*' | wc -l)
    [ "$slow" = 0 ] || echo "  $h: $slow slow unit(s) in $WORK/$h-artifacts (not failures; replay one with $BIN/$exe FILE)" >&2
    if [ "$rc" != 0 ] || [ "$crashes" != 0 ]; then
        crashed=1
        [ "$crashes" != 0 ] || crashes="exit $rc"
    fi
    printf '%-12s %8s %12s %10s %7s %7s %7s %8s\n' "$h" "$SECONDS_EACH" "${execs:-?}" "${speed:-?}" \
        "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$h" "$SECONDS_EACH" "${execs:-?}" \
        "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes" >>"$WORK/results.tsv"
    if [ "$crashes" != 0 ]; then
        grep -E "ERROR|SUMMARY|invariant|Fatal|deadly|#[0-9]+ in " "$log" | head -30 >&2
        echo "  reproducer(s): $(find "$WORK/$h-artifacts" -type f ! -name 'slow-unit-*' | tr '\n' ' ') (log: $log)" >&2
        # The work dir dies with a CI machine; the log is what is left. Each reproducer,
        # gzipped and base64-encoded (decode: base64 -d | gunzip > crash).
        for f in $(find "$WORK/$h-artifacts" -type f ! -name 'slow-unit-*' | head -3); do
            echo "  $(basename "$f") (gzip | base64):" >&2
            gzip -9c "$f" | base64 -w 100 | sed 's/^/    /' >&2
        done
    fi
done
exit $crashed
