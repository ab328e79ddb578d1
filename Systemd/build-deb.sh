#!/bin/sh
# Builds the Debian package qsent_VERSION_ARCH.deb: self-contained release binaries (Swift
# runtime linked statically, stripped), the systemd units, the sysusers file, the default model,
# man pages, shell completions and the docs. Needs no root (dpkg-deb --root-owner-group).
#
#   Systemd/build-deb.sh OUTDIR [--arch amd64|arm64]
#
# --arch defaults to this machine's (dpkg --print-architecture). arm64 on an x86_64 host needs a
# Swift SDK for aarch64-unknown-linux-gnu (a Debian 12 sysroot with libsystemd-dev, e.g. made by
# swift-sdk-generator; name it with QSENT_SWIFT_SDK_ARM64 or let `swift sdk list` find it);
# without one the script says so and exits 3.
# Environment: QSENT_DEB_REQUIRE_NO_ICU=1 fails the build if a binary still links Foundation's
# ICU (FoundationInternationalization), i.e. once the sources import FoundationEssentials only.
# QSENT_DEB_COMPRESS=gzip|xz|zstd|none (default xz; the tests use gzip to save time).
# The version comes from Sources/*/Version.swift (QsentVersion.string). The last line printed is
# the path of the .deb. Scratch builds go to .build-deb-ARCH/ in the checkout.
set -eu

die() { echo "build-deb.sh: $1" >&2; exit "${2:-1}"; }
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

OUTDIR=""
ARCH=$(dpkg --print-architecture 2>/dev/null || uname -m)
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) [ $# -ge 2 ] || die "--arch needs amd64 or arm64" 2; ARCH=$2; shift 2 ;;
        --arch=*) ARCH=${1#--arch=}; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "build-deb.sh: unknown option $1" >&2; usage 2 ;;
        *) [ -z "$OUTDIR" ] || die "one OUTDIR only (got $OUTDIR and $1)" 2; OUTDIR=$1; shift ;;
    esac
done
[ -n "$OUTDIR" ] || { echo "build-deb.sh: missing OUTDIR" >&2; usage 2; }
case "$ARCH" in x86_64) ARCH=amd64 ;; aarch64) ARCH=arm64 ;; esac
for t in dpkg-deb swift gzip readelf; do
    command -v "$t" >/dev/null 2>&1 || die "$t is not installed (dpkg-deb: package dpkg; readelf: binutils; swift: the toolchain)"
done

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=$(sed -n 's/^[[:space:]]*public static let string = "\([^"]*\)".*/\1/p' "$ROOT"/Sources/*/Version.swift | head -n1)
[ -n "$VERSION" ] || die "cannot read the version (QsentVersion.string) from $ROOT/Sources/*/Version.swift"
MODEL=$ROOT/Quantizer/Models/distilbert-h384-imdb.qsent
[ -f "$MODEL" ] || die "the default model $MODEL is missing"

HOSTARCH=$(uname -m)
SDKFLAGS=""
STRIP=strip
case "$ARCH" in
    amd64) TRIPLE=x86_64-unknown-linux-gnu ;;
    arm64) TRIPLE=aarch64-unknown-linux-gnu ;;
    *) die "unsupported architecture $ARCH (amd64 or arm64)" 2 ;;
esac
case "$ARCH:$HOSTARCH" in
    amd64:x86_64|arm64:aarch64) ;;
    arm64:*)
        SDK=${QSENT_SWIFT_SDK_ARM64:-$(swift sdk list 2>/dev/null | grep -i 'aarch64' | grep -vi musl | head -n1 || true)}
        [ -n "$SDK" ] || die "no Swift SDK for $TRIPLE is installed (swift sdk list shows none), so arm64 cannot be built on this $HOSTARCH host. To cross-build, install (1) a Swift SDK for aarch64 Linux matching this toolchain ($(swift --version 2>/dev/null | head -n1)): a Debian 12 arm64 sysroot with libsystemd-dev, e.g. made by swift-sdk-generator, installed with: swift sdk install PATH.artifactbundle (then set QSENT_SWIFT_SDK_ARM64=NAME if swift sdk list shows several), and (2) binutils-aarch64-linux-gnu (apt-get install binutils-aarch64-linux-gnu, for aarch64-linux-gnu-strip). Or run this script on an arm64 machine with a Swift toolchain." 3
        SDKFLAGS="--swift-sdk $SDK"
        command -v aarch64-linux-gnu-strip >/dev/null 2>&1 || die "aarch64-linux-gnu-strip missing (apt-get install binutils-aarch64-linux-gnu)"
        STRIP=aarch64-linux-gnu-strip ;;
    *) die "cannot build $ARCH on a $HOSTARCH host" 3 ;;
esac

SCRATCH=$ROOT/.build-deb-$ARCH
PRODUCTS="qsent qsentd qsent-quantize"
echo "build-deb.sh: building qsent $VERSION for $ARCH (release, static Swift stdlib) in $SCRATCH" >&2
# shellcheck disable=SC2086
(cd "$ROOT" && swift build -c release --static-swift-stdlib $SDKFLAGS --scratch-path "$SCRATCH" >&2) \
    || die "swift build failed"
# shellcheck disable=SC2086
BIN=$(cd "$ROOT" && swift build -c release --static-swift-stdlib $SDKFLAGS --scratch-path "$SCRATCH" --show-bin-path)
for p in $PRODUCTS; do [ -x "$BIN/$p" ] || die "$BIN/$p was not built"; done

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
STAGE=$(mktemp -d "$OUTDIR/.qsent-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/pkg
umask 022
install -d "$PKG/DEBIAN" "$PKG/etc/default" "$PKG/usr/bin" "$PKG/usr/lib/systemd/system" "$PKG/usr/lib/sysusers.d" \
    "$PKG/usr/share/qsent" "$PKG/usr/share/doc/qsent" "$PKG/usr/share/man/man1" \
    "$PKG/usr/share/bash-completion/completions" "$PKG/usr/share/zsh/vendor-completions" \
    "$PKG/usr/share/fish/vendor_completions.d"

# Binaries: stripped; they may need only glibc, libstdc++/libgcc and libsystemd (qsentd's
# sd_notify / sd_listen_fds), all present on a Debian 12 box with systemd.
ALLOWED='^(libc\.so\.6|libm\.so\.6|libdl\.so\.2|libpthread\.so\.0|librt\.so\.1|libutil\.so\.1|libstdc\+\+\.so\.6|libgcc_s\.so\.1|libsystemd\.so\.0|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1)$'
ICU_REPORT=""
for p in $PRODUCTS; do
    # Foundation's ICU comes in with FoundationInternationalization (import Foundation): its
    # C++ code (namespace icu_NN, mangled _ZN6icu_NN), its C API (u_*/ucol_* with a _NN version
    # suffix), and its ~30 MB data blob (icudtNN_dat, whose package name icudtNNl is in the
    # bytes even after stripping). Dynamic libicu would show in NEEDED (refused below anyway).
    icu=""
    if readelf -Ws "$BIN/$p" 2>/dev/null | grep -Eq '_ZN6icu_[0-9]+|icudt[0-9]+_dat|(u|ucol|ubrk|unorm2|udat)_[A-Za-z]+_[0-9]{2}$|FoundationInternationalization|_FoundationICU'; then
        icu="symbols"
    fi
    if LC_ALL=C grep -aqE 'icudt[0-9]+[lb]' "$BIN/$p"; then icu="${icu:+$icu, }ICU data"; fi
    if readelf -d "$BIN/$p" | grep -q 'NEEDED.*libicu'; then icu="${icu:+$icu, }libicu"; fi
    [ -z "$icu" ] || ICU_REPORT="$ICU_REPORT $p($icu)"
    "$STRIP" --strip-all -o "$PKG/usr/bin/$p" "$BIN/$p"
    chmod 0755 "$PKG/usr/bin/$p"
    needed=$(readelf -d "$PKG/usr/bin/$p" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    for lib in $needed; do
        echo "$lib" | grep -Eq "$ALLOWED" || die "$p needs $lib, which a Debian 12 box without Swift does not have (not linked statically?)"
    done
    bytes=$(stat -c %s "$PKG/usr/bin/$p")
    echo "build-deb.sh: $p $bytes bytes ($(awk "BEGIN{printf \"%.1f\", $bytes/1048576}") MiB) stripped; ICU: ${icu:-none}; needs: $(echo $needed)" >&2
done
if [ -n "$ICU_REPORT" ]; then
    echo "build-deb.sh: links Foundation's ICU (import Foundation rather than FoundationEssentials or nothing):$ICU_REPORT" >&2
    [ "${QSENT_DEB_REQUIRE_NO_ICU:-0}" != 1 ] || die "QSENT_DEB_REQUIRE_NO_ICU=1 and$ICU_REPORT still link ICU"
fi
# The highest glibc symbol version the binaries use decides the libc6 dependency.
GLIBC_MIN=$(for p in $PRODUCTS; do readelf -W --dyn-syms "$PKG/usr/bin/$p"; done \
    | grep -o 'GLIBC_2\.[0-9]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -u | tail -n1)
[ -n "$GLIBC_MIN" ] || die "no GLIBC_ symbol versions found in the binaries"

# Units, sysusers, model, settings.
install -m 0644 "$ROOT/Systemd/qsentd.socket" "$ROOT/Systemd/qsentd.service" "$PKG/usr/lib/systemd/system/"
install -m 0644 "$ROOT/Systemd/qsentd.sysusers" "$PKG/usr/lib/sysusers.d/qsent.conf"
install -m 0644 "$MODEL" "$PKG/usr/share/qsent/model.qsent"
# The service's EnvironmentFile: every line commented out (a conffile: kept on upgrade and
# remove, deleted on purge).
install -m 0644 "$ROOT/Systemd/debian/qsentd.default" "$PKG/etc/default/qsentd"

# Man pages (swift-argument-parser's generate-manual plugin) and completions come from running
# the tools, so they need binaries for this host: for a cross build, a native one is made too.
TOOLSCRATCH=$SCRATCH
if [ -n "$SDKFLAGS" ]; then
    TOOLSCRATCH=$ROOT/.build-deb-host
    (cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$TOOLSCRATCH" >&2) \
        || die "host build (for man pages and completions) failed"
fi
TOOLBIN=$(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$TOOLSCRATCH" --show-bin-path)
# swift-argument-parser's manual generator: the tool behind `swift package plugin
# generate-manual`, run directly because the plugin rebuilds every product without
# --static-swift-stdlib (swift package does not take that flag) over these binaries.
(cd "$ROOT" && swift build -c release --static-swift-stdlib --scratch-path "$TOOLSCRATCH" --product generate-manual >&2) \
    || die "building swift-argument-parser's generate-manual failed"
MANOUT=$STAGE/man
mkdir -p "$MANOUT"
# The manual date: the last commit's, so rebuilding the same tree gives the same pages.
MANDATE=$(git -C "$ROOT" log -1 --format=%cs 2>/dev/null || date -u +%F)
for p in $PRODUCTS; do
    "$TOOLBIN/generate-manual" "$TOOLBIN/$p" --multi-page --date "$MANDATE" --output-directory "$MANOUT" >&2 \
        || die "generate-manual failed for $p"
done
pages=$(find "$MANOUT" -name '*.1' | sort)
for p in $PRODUCTS; do
    echo "$pages" | grep -q "/$p\.1$" || die "generate-manual made no man page for $p (got: $(echo $pages))"
done
for f in $pages; do
    gzip -9n -c "$f" > "$PKG/usr/share/man/man1/$(basename "$f").gz"
done
chmod 0644 "$PKG"/usr/share/man/man1/*
for p in $PRODUCTS; do
    "$TOOLBIN/$p" --generate-completion-script bash > "$PKG/usr/share/bash-completion/completions/$p"
    "$TOOLBIN/$p" --generate-completion-script zsh > "$PKG/usr/share/zsh/vendor-completions/_$p"
    "$TOOLBIN/$p" --generate-completion-script fish > "$PKG/usr/share/fish/vendor_completions.d/$p.fish"
done
chmod 0644 "$PKG"/usr/share/bash-completion/completions/* "$PKG"/usr/share/zsh/vendor-completions/* \
    "$PKG"/usr/share/fish/vendor_completions.d/*

# Docs.
install -m 0644 "$ROOT/README.md" "$ROOT"/docs/*.md "$PKG/usr/share/doc/qsent/"
install -m 0644 "$ROOT/Systemd/debian/copyright" "$PKG/usr/share/doc/qsent/copyright"

# Control files.
for s in postinst prerm postrm; do install -m 0755 "$ROOT/Systemd/debian/$s" "$PKG/DEBIAN/$s"; done
SIZE_KB=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<EOF
Package: qsent
Version: $VERSION
Architecture: $ARCH
Maintainer: qsent maintainers <qsent@localhost>
Installed-Size: $SIZE_KB
Depends: libc6 (>= $GLIBC_MIN), libstdc++6 (>= 12), libgcc-s1, libsystemd0, systemd | systemd-standalone-sysusers | systemd-sysusers
Section: utils
Priority: optional
Description: fast always-on text classification daemon (int8 BERT)
 qsentd keeps a quantized DistilBERT/BERT classifier loaded and answers JSON
 lines on a socket-activated Unix socket (/run/qsentd/qsentd.sock; members of
 group qsent may connect). qsent is the client and also runs the engine
 in-process; qsent-quantize turns a Hugging Face model folder into a .qsent
 blob. Ships an IMDB sentiment model as the default.
EOF
(cd "$PKG" && find usr -type f -exec md5sum {} + | sort -k2) > "$PKG/DEBIAN/md5sums"
echo /etc/default/qsentd > "$PKG/DEBIAN/conffiles"
chmod 0644 "$PKG/DEBIAN/control" "$PKG/DEBIAN/md5sums" "$PKG/DEBIAN/conffiles"

DEB=$OUTDIR/qsent_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Z"${QSENT_DEB_COMPRESS:-xz}" --build "$PKG" "$DEB" >&2
debbytes=$(stat -c %s "$DEB")
echo "build-deb.sh: $(basename "$DEB") $debbytes bytes ($(awk "BEGIN{printf \"%.1f\", $debbytes/1048576}") MiB, ${QSENT_DEB_COMPRESS:-xz})" >&2
echo "$DEB"
