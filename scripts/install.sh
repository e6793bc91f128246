#!/bin/sh
# Installs cmux-proxy from a release archive (what `make dist` builds), checked against the
# release's SHA256SUMS before anything is installed.
#
#   curl -fsSL https://github.com/OWNER/cmux-proxy/releases/latest/download/install.sh | sh
#
# Environment:
#   CMUX_PROXY_VERSION   version to install, e.g. 0.1.0 (default: the latest)
#   CMUX_PROXY_BASE_URL  folder holding one release's archives and SHA256SUMS (a mirror, or
#                        `make dist`'s dist/ served as it is); default: the GitHub release
#   CMUX_PROXY_BIN_DIR   where the binaries go (default /usr/local/bin as root, else
#                        ~/.local/bin); its parent is the prefix of the shim (lib/cmux-proxy)
#                        and the systemd unit (lib/systemd/system)
#   CMUX_PROXY_CONF_DIR  where the conf goes (default /etc/cmux-proxy for the prefixes /usr
#                        and /usr/local, else <prefix>/etc/cmux-proxy)
#   CMUX_PROXY_ARCH      the machine's architecture (default: uname -m)
# Needs only curl or wget, tar and sha256sum. POSIX sh.
set -eu

# The GitHub repository of the releases. OWNER is a placeholder until the project has a home.
REPO_URL=${CMUX_PROXY_REPO_URL:-https://github.com/OWNER/cmux-proxy}

die() {
    echo "cmux-proxy install: $*" >&2
    exit 1
}

arch=${CMUX_PROXY_ARCH:-$(uname -m)}
case "$arch" in
x86_64 | amd64) arch=x86_64 ;;
aarch64 | arm64) arch=aarch64 ;;
*) die "unsupported architecture '$arch' (releases exist for x86_64 and aarch64)" ;;
esac
target=$arch-unknown-linux-gnu

version=${CMUX_PROXY_VERSION:-}
version=${version#v}
if [ -n "${CMUX_PROXY_BASE_URL:-}" ]; then
    base=${CMUX_PROXY_BASE_URL%/}
elif [ -n "$version" ]; then
    base=$REPO_URL/releases/download/v$version
else
    base=$REPO_URL/releases/latest/download
fi

if [ -z "${CMUX_PROXY_BIN_DIR:-}" ]; then
    if [ "$(id -u)" = 0 ]; then CMUX_PROXY_BIN_DIR=/usr/local/bin; else
        CMUX_PROXY_BIN_DIR=$HOME/.local/bin
    fi
fi
bin_dir=${CMUX_PROXY_BIN_DIR%/}
prefix=$(dirname "$bin_dir")
lib_dir=$prefix/lib/cmux-proxy
unit_dir=$prefix/lib/systemd/system
case "$prefix" in
/usr | /usr/local) conf_dir=${CMUX_PROXY_CONF_DIR:-/etc/cmux-proxy} ;;
*) conf_dir=${CMUX_PROXY_CONF_DIR:-$prefix/etc/cmux-proxy} ;;
esac

for tool in tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is needed"
done
if command -v curl >/dev/null 2>&1; then
    fetch() { curl -fsSL --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
    fetch() { wget -q -O "$2" "$1"; }
else
    die "curl or wget is needed"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/cmux-proxy-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM

fetch "$base/SHA256SUMS" "$work/SHA256SUMS" 2>/dev/null ||
    die "download failed: $base/SHA256SUMS"

# Latest: the highest version among the archives for this target listed in SHA256SUMS.
if [ -z "$version" ]; then
    version=$(sed -n "s/^[0-9a-f]\{64\}  \*\{0,1\}cmux-proxy-\(.*\)-$target\.tar\.gz\$/\1/p" \
        "$work/SHA256SUMS" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1)
    [ -n "$version" ] || die "no archive for $target in $base/SHA256SUMS"
fi
name=cmux-proxy-$version-$target
archive=$name.tar.gz

# The archive's line of SHA256SUMS, alone, so that sha256sum -c checks that file only.
grep "^[0-9a-f]\{64\}  \*\{0,1\}$archive\$" "$work/SHA256SUMS" >"$work/sum" ||
    die "no checksum for $archive in $base/SHA256SUMS"
fetch "$base/$archive" "$work/$archive" 2>/dev/null || die "download failed: $base/$archive"
(cd "$work" && sha256sum -c sum >/dev/null 2>&1) ||
    die "checksum mismatch for $archive: nothing installed"
tar -xzf "$work/$archive" -C "$work" || die "cannot unpack $archive"
src=$work/$name
for f in bin/cmux-proxy bin/cmux-proxyctl lib/cmux-proxy/libworkspace_net.so \
    lib/systemd/system/cmux-proxy.service etc/cmux-proxy/cmux-proxy.yaml; do
    [ -f "$src/$f" ] || die "$archive lacks $f: nothing installed"
done

# The archive names the default paths (/usr/local/bin, /etc/cmux-proxy): fill in ours, as
# `make install` does.
sed -e "s|^INSTALLED_CONF=.*|INSTALLED_CONF=$conf_dir/cmux-proxy.yaml|" \
    -e "s|^INSTALLED_BIN=.*|INSTALLED_BIN=$bin_dir/cmux-proxy|" \
    "$src/bin/cmux-proxyctl" >"$work/cmux-proxyctl"
sed -e "s|/usr/local/bin/|$bin_dir/|g" -e "s|/etc/cmux-proxy/|$conf_dir/|g" \
    "$src/lib/systemd/system/cmux-proxy.service" >"$work/cmux-proxy.service"

mkdir -p "$bin_dir" "$lib_dir" "$unit_dir" "$conf_dir" || die "cannot create the folders under $prefix"

# put MODE FROM TO: copy to a temporary name beside TO, then rename over it, so that TO is
# always either the old file or the whole new one (and a running binary is not overwritten).
put() {
    tmp=$(dirname "$3")/.$(basename "$3").new.$$
    cp "$2" "$tmp" && chmod "$1" "$tmp" && mv -f "$tmp" "$3" || {
        rm -f "$tmp"
        die "cannot install $3"
    }
}
put 644 "$src/lib/cmux-proxy/libworkspace_net.so" "$lib_dir/libworkspace_net.so"
put 644 "$work/cmux-proxy.service" "$unit_dir/cmux-proxy.service"
put 755 "$work/cmux-proxyctl" "$bin_dir/cmux-proxyctl"
put 755 "$src/bin/cmux-proxy" "$bin_dir/cmux-proxy"

# An edited conf is kept; the shipped one then goes beside it as .new (as `make install`).
conf=$conf_dir/cmux-proxy.yaml
conf_note=$conf
if [ -e "$conf" ] && ! cmp -s "$src/etc/cmux-proxy/cmux-proxy.yaml" "$conf"; then
    put 640 "$src/etc/cmux-proxy/cmux-proxy.yaml" "$conf.new"
    conf_note="$conf (kept: it differs from the shipped conf, which is $conf.new)"
else
    put 640 "$src/etc/cmux-proxy/cmux-proxy.yaml" "$conf"
fi

echo "cmux-proxy $version ($target) installed:"
echo "  $bin_dir/cmux-proxy"
echo "  $bin_dir/cmux-proxyctl"
echo "  $lib_dir/libworkspace_net.so"
echo "  $unit_dir/cmux-proxy.service"
echo "  $conf_note"
echo "next: $bin_dir/cmux-proxy -c $conf --listen 127.0.0.1:8080"
if [ "$unit_dir" = /usr/local/lib/systemd/system ] || [ "$unit_dir" = /usr/lib/systemd/system ]; then
    echo "  or: systemctl daemon-reload && systemctl enable --now cmux-proxy"
fi
