#!/usr/bin/env bash
# Runs the test suite under a sanitizer in an optimized (release) build:
#
#   Tests/sanitize.sh address [FILTER]   # AddressSanitizer + LeakSanitizer
#   Tests/sanitize.sh thread  [FILTER]   # ThreadSanitizer
#
# FILTER is passed to `swift test --filter` (a target, `Target.Class` or a regex); without it
# every test target runs except SystemTests (it builds its own uninstrumented .deb and tests it
# under systemd in a container: nothing instrumented would run; docs/TESTING.md "Sanitizers").
#
# Every product (the test bundle, qsentd, qsent, qsent-quantize) is built with the sanitizer, so
# the daemons the tests spawn are instrumented too (checked below). Each process writes its
# sanitizer reports to SCRATCH/sanitizer-logs/RUN/<asan|tsan>.<pid> (log_path), whatever
# happens to its stdout and stderr; the run fails if `swift test` fails or if any report file is
# left, and the reports are printed.
#
# Environment: NICE (default `nice -n 19`), SANITIZE_SCRATCH (default .build-asan-rel /
# .build-tsan-rel), SANITIZE_SKIP_BUILD=1 (reuse the last build), SANITIZE_LEAKS=1 (address:
# LeakSanitizer on), ASAN_OPTIONS / TSAN_OPTIONS (appended to the script's). Exit status: 0 clean,
# 1 test failure or sanitizer report, 2 usage or an uninstrumented binary.
set -euo pipefail
# The whole script is one block, read before it runs: editing this file during a run (bash
# otherwise reads a script as it goes) cannot change what the running one does.
{
cd "$(dirname "$0")/.."
root=$PWD

usage() { echo "usage: $0 address|thread [FILTER]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
san=$1
filter=${2:-}
case $san in
    address) short=asan ;;
    thread) short=tsan ;;
    *) usage ;;
esac
read -r -a nice_cmd <<< "${NICE:-nice -n 19}"
scratch=${SANITIZE_SCRATCH:-.build-$short-rel}
# -enable-testing: `swift test -c release` builds modules testable (a test target uses
# `@testable import`), `swift build --build-tests` does not unless asked.
swift_args=(-c release --sanitize="$san" --scratch-path "$scratch" -Xswiftc -enable-testing)
# AddressSanitizer checks each memory access with inline code by default; in the AVX-512 kernels
# (30 always-inline instantiations of the 6 x 4 zmm micro-kernels) that made clang -O2 take over
# 5 minutes on qk_avx512vnni.c alone (it had not finished; 1.9 s for qk_avx2.c). With the
# threshold at 0 every check is a call into the runtime instead: the same checks, 32 s to compile
# (docs/TESTING.md "Sanitizers").
if [ "$san" = address ]; then
    swift_args+=(-Xcc -mllvm -Xcc -asan-instrumentation-with-call-threshold=0)
fi

if [ "${SANITIZE_SKIP_BUILD:-0}" != 1 ]; then
    start=$(date +%s)
    "${nice_cmd[@]}" swift build --build-tests "${swift_args[@]}"
    echo "sanitize.sh: $san build took $(( $(date +%s) - start )) s"
fi
bin=$(swift build "${swift_args[@]}" --show-bin-path)

# The spawned binaries must be the instrumented ones (the daemon tests run $bin/qsentd).
for exe in qsentd qsent qsent-quantize qsentPackageTests.xctest; do
    # (grep -c, not -q: with pipefail, nm's SIGPIPE after an early grep -q exit fails the pipe)
    if [ "$(nm "$bin/$exe" 2>/dev/null | grep -c " __${short}_init$")" = 0 ]; then
        echo "sanitize.sh: $bin/$exe is missing or not built with -sanitize=$san" >&2
        exit 2
    fi
done

logs="$root/$scratch/sanitizer-logs/$(date -u +%Y%m%dT%H%M%SZ)-$$"
mkdir -p "$logs"
case $san in
    address)
        # LeakSanitizer is off unless SANITIZE_LEAKS=1: at exit of the test process it reports
        # XCTest's own allocations (docs/TESTING.md "Sanitizers"), so the run would always fail.
        export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=${SANITIZE_LEAKS:-0}:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        # Allocation sites outside qsent that are not leaks of ours, each explained in the file.
        export LSAN_OPTIONS="suppressions=$root/Tests/lsan-suppressions.txt:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
        ;;
    thread)
        # halt_on_error=0: every race is reported (TSan still exits 66 at the end).
        export TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=0:exitcode=66:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
        ;;
esac

# Read by the tests (TestEnv.sanitizer): the drain test sends fewer reviews to fit the daemon's
# fixed drain deadline.
export QSENT_TEST_SANITIZER=$san

test_args=(--skip-build "${swift_args[@]}")
if [ -n "$filter" ]; then test_args+=(--filter "$filter"); else test_args+=(--skip SystemTests); fi

start=$(date +%s)
load=$(cut -d' ' -f1 /proc/loadavg)
status=0
"${nice_cmd[@]}" swift test "${test_args[@]}" || status=$?
elapsed=$(( $(date +%s) - start ))

reports=0
shopt -s nullglob
for f in "$logs"/*; do
    if [ -s "$f" ]; then
        reports=$((reports + 1))
        echo "==== sanitizer report: $f"
        cat "$f"
    fi
done
echo "sanitize.sh: $san${filter:+ --filter $filter}: swift test exit $status, $reports report file(s), ${elapsed} s, load at start $load (reports in $logs)"
[ "$status" -eq 0 ] && [ "$reports" -eq 0 ] || exit 1
exit 0
}
