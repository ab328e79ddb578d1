#!/bin/sh
# Builds (once) and caches a Debian 12 (bookworm) minbase root with systemd, as a tarball
# outside the repository, for the real-systemd test (systemd-test.sh).
#
#   make-root.sh [TARBALL]        default $QSENT_TEST_CACHE/bookworm.tar
#                                 (QSENT_TEST_CACHE defaults to /var/cache/qsent-test)
#
# Needs root, debootstrap and systemd-nspawn. The mirror is the first http(s) Debian mirror in
# this machine's /etc/apt/sources.list(.d) (override with QSENT_DEBIAN_MIRROR). Prints the
# tarball's path on its last line. Exit 0: cached or built; 1: cannot build (message says why).
set -eu

CACHE=${QSENT_TEST_CACHE:-/var/cache/qsent-test}
TARBALL=${1:-$CACHE/bookworm.tar}
SUITE=bookworm
# The root holds no Swift: it is the "clean box" the .deb must install on. procps is left out
# on purpose so that nothing in the units can depend on /bin/kill or ps.
INCLUDE=systemd,systemd-sysv,dbus
EXTRA="socat"

die() { echo "make-root.sh: $*" >&2; exit 1; }

if [ -s "$TARBALL" ]; then echo "$TARBALL"; exit 0; fi
[ "$(id -u)" = 0 ] || die "needs root to debootstrap (run as root or provide $TARBALL)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
command -v systemd-nspawn >/dev/null || die "systemd-nspawn is not installed (apt-get install systemd-container)"

mirror() {
    if [ -n "${QSENT_DEBIAN_MIRROR:-}" ]; then echo "$QSENT_DEBIAN_MIRROR"; return; fi
    # deb822 .sources files: "URIs: http://deb.debian.org/debian" (skip -security, keep the main archive)
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f"
    done | grep -E '^https?://' | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 | grep . && return
    # one-line format: "deb http://deb.debian.org/debian bookworm main"
    cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; break } }' \
        | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 | grep . && return
    echo http://deb.debian.org/debian
}
MIRROR=$(mirror)

mkdir -p "$(dirname "$TARBALL")"
WORK=$(mktemp -d "$(dirname "$TARBALL")/root.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/root
mkdir -m 0755 "$ROOT"
echo "make-root.sh: debootstrap $SUITE from $MIRROR into $ROOT" >&2
debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (mirror $MIRROR reachable?)"; }
# Extra packages through the container's own apt (no boot needed).
echo "deb $MIRROR $SUITE main" > "$ROOT/etc/apt/sources.list"
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -q --register=no --keep-unit -D "$ROOT" \
    sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq --no-install-recommends $EXTRA >/dev/null && apt-get clean" \
    >"$WORK/apt.log" 2>&1 || { tail -n 20 "$WORK/apt.log" >&2; die "apt-get install $EXTRA in the root failed"; }
rm -rf "$ROOT/var/lib/apt/lists/"* "$ROOT/var/cache/apt/"*.bin
# No apt sources inside: the test installs the local .deb only, with no network.
: > "$ROOT/etc/apt/sources.list"
tar -C "$ROOT" --numeric-owner -cf "$TARBALL.tmp" .
mv "$TARBALL.tmp" "$TARBALL"
echo "$TARBALL"
