#!/bin/sh
# Builds release binaries and installs qsent, qsentd, the model and the systemd units.
#
#   Systemd/install.sh --model PATH.qsent [--no-build] [--enable]
#
# Environment: PREFIX (default /usr/local), DESTDIR (staging root, default empty),
# SYSTEMD_UNITDIR (default /etc/systemd/system), SYSUSERSDIR (default /usr/lib/sysusers.d).
# The model is copied to $PREFIX/share/qsent/model.qsent (the path the unit expects).
# With DESTDIR set nothing is started; --enable (only without DESTDIR) creates the group,
# reloads systemd and enables + starts qsentd.socket.
set -eu

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSTEMD_UNITDIR=${SYSTEMD_UNITDIR:-/etc/systemd/system}
SYSUSERSDIR=${SYSUSERSDIR:-/usr/lib/sysusers.d}
MODEL=""
BUILD=1
ENABLE=0

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --model) MODEL=$2; shift 2 ;;
        --model=*) MODEL=${1#--model=}; shift ;;
        --no-build) BUILD=0; shift ;;
        --enable) ENABLE=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "install.sh: unknown argument $1" >&2; usage 2 ;;
    esac
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && swift build -c release --product qsentd && swift build -c release --product qsent)
fi
BIN=$(cd "$ROOT" && swift build -c release --show-bin-path)
for b in qsentd qsent; do
    [ -x "$BIN/$b" ] || { echo "install.sh: $BIN/$b missing; run without --no-build" >&2; exit 1; }
done

install -d "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/qsent" "$DESTDIR$PREFIX/share/doc/qsent" \
    "$DESTDIR$SYSTEMD_UNITDIR" "$DESTDIR$SYSUSERSDIR"
install -m 0755 "$BIN/qsentd" "$BIN/qsent" "$DESTDIR$PREFIX/bin/"
if [ -n "$MODEL" ]; then
    [ -f "$MODEL" ] || { echo "install.sh: model $MODEL is not a file (the daemon unit expects a .qsent blob)" >&2; exit 1; }
    install -m 0644 "$MODEL" "$DESTDIR$PREFIX/share/qsent/model.qsent"
else
    echo "install.sh: no --model given; put a blob at $PREFIX/share/qsent/model.qsent before starting" >&2
fi
install -m 0644 "$ROOT/docs/PROTOCOL.md" "$DESTDIR$PREFIX/share/doc/qsent/"
[ -f "$ROOT/docs/DAEMON.md" ] && install -m 0644 "$ROOT/docs/DAEMON.md" "$DESTDIR$PREFIX/share/doc/qsent/"
for u in qsentd.socket qsentd.service; do
    sed "s#/usr/local/#$PREFIX/#g" "$ROOT/Systemd/$u" > "$DESTDIR$SYSTEMD_UNITDIR/$u"
    chmod 0644 "$DESTDIR$SYSTEMD_UNITDIR/$u"
done
install -m 0644 "$ROOT/Systemd/qsentd.sysusers" "$DESTDIR$SYSUSERSDIR/qsentd.conf"

if [ "$ENABLE" = 1 ]; then
    [ -z "$DESTDIR" ] || { echo "install.sh: --enable is ignored with DESTDIR" >&2; exit 0; }
    systemd-sysusers "$SYSUSERSDIR/qsentd.conf"
    systemctl daemon-reload
    systemctl enable --now qsentd.socket
    echo "qsentd.socket enabled; add users to group qsentd to let them connect."
fi
echo "installed under ${DESTDIR}${PREFIX}"
