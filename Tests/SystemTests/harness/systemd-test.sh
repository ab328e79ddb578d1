#!/bin/sh
# Real-systemd test of the .deb: boots a clean Debian 12 root (no Swift) with systemd-nspawn,
# installs qsent_*.deb with apt and checks the socket-activated daemon under the real systemd
# (inside.sh, run there by a oneshot unit whose SuccessAction=/FailureAction=exit end the boot).
#
#   systemd-test.sh DEB [EVIDENCE_DIR]
#
# Exit 0: every check passed. 1: a check failed (EVIDENCE_DIR/results.txt and inside.log say
# which). 77: this machine cannot boot a container (reason on stderr; the caller skips).
# The root comes from make-root.sh (cached tarball, built on first use). Expected answers are
# computed on the host with the package's own qsent in-process (`qsent classify --model`).
# Environment: QSENT_TEST_CACHE (tarball and extracted root, default /var/cache/qsent-test),
# QSENT_SHARED (the ../shared data: IMDB texts and the FP32 HF model the reload swaps to).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
skip() { echo "systemd-test.sh: SKIP: $*" >&2; exit 77; }
die() { echo "systemd-test.sh: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: systemd-test.sh DEB [EVIDENCE_DIR]"
DEB=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
[ -f "$DEB" ] || die "no .deb at $DEB"
EVID=${2:-$(mktemp -d /tmp/qsent-systemtest.XXXXXX)}
mkdir -p "$EVID"
EVID=$(cd "$EVID" && pwd)

[ "$(id -u)" = 0 ] || skip "needs root to boot a container with systemd-nspawn"
command -v systemd-nspawn >/dev/null 2>&1 || skip "systemd-nspawn is not installed (apt-get install systemd-container)"
CACHE=${QSENT_TEST_CACHE:-/var/cache/qsent-test}
TARBALL=$CACHE/bookworm.tar
if [ ! -s "$TARBALL" ]; then
    command -v debootstrap >/dev/null 2>&1 || skip "no cached root $TARBALL and debootstrap is not installed (apt-get install debootstrap)"
    QSENT_TEST_CACHE=$CACHE "$HERE/make-root.sh" "$TARBALL" >&2 \
        || skip "no cached root $TARBALL and it cannot be built (no network to the Debian mirror?)"
fi
# The extracted root is the read-only lower layer: --volatile=overlay puts every change of a
# run (the installed package, the journal) in a tmpfs that is gone afterwards.
ROOT=$CACHE/bookworm.root
if [ ! -f "$ROOT/.qsent-stamp" ] || [ "$TARBALL" -nt "$ROOT/.qsent-stamp" ]; then
    rm -rf "$ROOT"
    mkdir -p "$ROOT"
    tar -C "$ROOT" --numeric-owner -xf "$TARBALL"
    touch "$ROOT/.qsent-stamp"
fi
# 0755: a 0700 root (mktemp -d) hangs dbus and fails DynamicUser= with 200/CHDIR.
chmod 0755 "$ROOT"

# Host side: the package's qsent runs the engine in-process for the expected answers.
HOSTPKG=$EVID/host-pkg
rm -rf "$HOSTPKG" && mkdir -p "$HOSTPKG"
dpkg-deb -x "$DEB" "$HOSTPKG"
QSENT=$HOSTPKG/usr/bin/qsent
MODEL=$HOSTPKG/usr/share/qsent/model.qsent
SHARED=${QSENT_SHARED:-$(cd "$HERE/../../.." && pwd)/../shared}
HF=$SHARED/models/distilbert-h384-imdb
IMDB=$SHARED/data/imdb/test.jsonl

# Inputs: IMDB test reviews sampled across the file (it is sorted negatives first), cut short to
# keep the run short; plain sentences when ../shared is absent.
sample() {  # N STEP CHARS -> JSONL {"id","text"}
    LC_ALL=C awk -v n="$1" -v step="$2" -v cut="$3" 'NR % step == 1 && c < n {
        t = $0; sub(/^.*"text": *"/, "", t); sub(/"[^"]*$/, "", t)
        if (length(t) > cut) {
            # cut at CHARS bytes, then back off out of any escape sequence or UTF-8 character
            t = substr(t, 1, cut)
            while (index(substr(t, length(t) - 5), "\\") > 0) t = substr(t, 1, length(t) - 1)
            while (t ~ /[\200-\377]$/) t = substr(t, 1, length(t) - 1)
        }
        printf "{\"id\":%d,\"text\":\"%s\"}\n", c, t; c++ }' "$IMDB"
}
if [ -f "$IMDB" ]; then
    sample 24 1000 300 > "$EVID/texts.jsonl"
    sample 300 80 200 > "$EVID/pipeline.jsonl"
else
    i=0; : > "$EVID/texts.jsonl"
    for t in "A wonderful, moving film." "Dreadful. I walked out." "The plot was thin but the acting carried it." \
             "Worst two hours of my life." "I would watch it again tomorrow." "Boring, predictable and far too long."; do
        printf '{"id":%d,"text":"%s"}\n' $i "$t" >> "$EVID/texts.jsonl"; i=$((i+1))
    done
    awk '{ for (k = 0; k < 50; k++) { s = $0; sub(/"id":[0-9]+/, "\"id\":" (NR - 1) * 50 + k, s); print s } }' \
        "$EVID/texts.jsonl" > "$EVID/pipeline.jsonl"
fi
"$QSENT" classify --model "$MODEL" --jsonl "$EVID/texts.jsonl" --json > "$EVID/expected-int8.jsonl" \
    || die "in-process qsent classify with $MODEL failed on the host"
"$QSENT" classify --model "$MODEL" --jsonl "$EVID/pipeline.jsonl" --json > "$EVID/expected-pipeline-int8.jsonl" \
    || die "in-process qsent classify (pipeline set) failed on the host"
BIND_HF=""
if [ -f "$HF/config.json" ]; then
    "$QSENT" classify --model "$HF" --jsonl "$EVID/texts.jsonl" --json > "$EVID/expected-fp32.jsonl" \
        || die "in-process qsent classify with $HF failed on the host"
    "$QSENT" classify --model "$HF" --jsonl "$EVID/pipeline.jsonl" --json > "$EVID/expected-pipeline-fp32.jsonl" \
        || die "in-process qsent classify (pipeline set, FP32) failed on the host"
    BIND_HF="--bind-ro=$HF:/srv/hf-model"
fi
cp "$DEB" "$EVID/qsent.deb"
cp "$HERE/inside.sh" "$HERE/compare.awk" "$EVID/"
chmod 0755 "$EVID/inside.sh"
rm -f "$EVID/results.txt" "$EVID/inside.log" "$EVID/PASS" "$EVID/FAIL"

# The test unit, started at boot; its end ends the container with its exit status.
UNITS=$EVID/units
rm -rf "$UNITS" && mkdir -p "$UNITS/multi-user.target.wants"
cat > "$UNITS/qsent-systemtest.service" <<'EOF'
[Unit]
Description=qsent real-systemd test
After=multi-user.target dbus.service
SuccessAction=exit
FailureAction=exit

[Service]
Type=oneshot
ExecStart=/srv/qsent-test/inside.sh /srv/qsent-test
StandardOutput=append:/srv/qsent-test/inside.log
StandardError=append:/srv/qsent-test/inside.log
TimeoutStartSec=540
EOF
ln -s ../qsent-systemtest.service "$UNITS/multi-user.target.wants/qsent-systemtest.service"

echo "systemd-test.sh: booting $ROOT (volatile overlay), evidence in $EVID" >&2
start=$(date +%s)
set +e
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 timeout 600 systemd-nspawn -q -b -D "$ROOT" \
    --volatile=overlay --register=no --keep-unit --private-network \
    --machine=qsent-systemtest \
    --bind="$EVID:/srv/qsent-test" --bind-ro="$UNITS:/run/systemd/system" $BIND_HF \
    > "$EVID/console.log" 2>&1 </dev/null
rc=$?
set -e
echo "systemd-test.sh: container exited with $rc after $(( $(date +%s) - start )) s" >&2
[ -f "$EVID/results.txt" ] && cat "$EVID/results.txt"
if [ "$rc" = 0 ] && [ -f "$EVID/PASS" ] && ! grep -q '^FAIL' "$EVID/results.txt"; then
    echo "systemd-test.sh: all checks passed"
    exit 0
fi
[ -f "$EVID/inside.log" ] && tail -n 40 "$EVID/inside.log" >&2
[ "$rc" = 124 ] && echo "systemd-test.sh: the container did not finish in 600 s (console: $EVID/console.log)" >&2
tail -n 20 "$EVID/console.log" >&2
die "real-systemd test failed (nspawn exit $rc); evidence in $EVID"
