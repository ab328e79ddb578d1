#!/bin/sh
# CI step for the fuzz harnesses: builds them and runs each for FUZZ_CI_SECONDS (default 60)
# from the committed seeds only (a fresh work dir), so five harnesses take 5 minutes plus
# the build. Fails if any harness crashes.
#
#   Tests/Fuzz/ci.sh
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
FUZZ_WORK=$(mktemp -d "${TMPDIR:-/tmp}/qsent-fuzz-ci.XXXXXX")
export FUZZ_WORK
rc=0
"$HERE/run.sh" "${FUZZ_CI_SECONDS:-60}" || rc=$?
[ "$rc" = 0 ] || echo "fuzz CI: a harness crashed; artifacts and logs in $FUZZ_WORK" >&2
[ "$rc" != 0 ] || rm -rf "$FUZZ_WORK"
exit $rc
