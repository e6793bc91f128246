#!/usr/bin/env bash
# Test of `make install` and `make uninstall`, in a scratch DESTDIR (never the real /usr or
# /etc), with an already-built binary so that no release build is needed.
#
# usage: bash e2e/install_test.sh BINARY      (make test-install passes the test build)
# Prints PASS/FAIL per check, ends with "install test: N passed, M failed", exits 1 on any
# failure.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE="install test"
# shellcheck source=e2e/checks.sh
. "$HERE/checks.sh"
BIN=$(binary_argument "$@") || exit 2

DEST=$(mktemp -d /tmp/cmux-install-test.XXXXXX)
trap 'rm -rf "$DEST"' EXIT
# Built from pieces so that a mistake cannot turn it into the real root.
[ -n "$DEST" ] && [ "$DEST" != / ] || { echo "no scratch directory" >&2; exit 2; }
MAKE_ARGS=(-s -C "$REPO" DESTDIR="$DEST" PREFIX=/usr SYSCONFDIR=/etc BIN="$BIN")
LOG=$DEST.log

mode_is() { [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ]; }
has_debug_info() { readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; }

echo "install test: make install DESTDIR=$DEST PREFIX=/usr SYSCONFDIR=/etc BIN=$BIN"
if ! command -v readelf >/dev/null; then
    fail "readelf is needed (binutils)"
fi
if [ ! -x "$BIN" ]; then
    fail "binary to install: $BIN does not exist"
    summary
    exit 1
fi

# ---- first install -------------------------------------------------------------------------
SUM=$(sha256sum <"$BIN")
make "${MAKE_ARGS[@]}" install >"$LOG" 2>&1
rc=$?
check "make install succeeds" test $rc = 0
[ $rc = 0 ] || sed 's/^/     /' "$LOG"
B=$DEST/usr/bin
check "usr/bin/cmux-proxy, mode 755" mode_is "$B/cmux-proxy" 755
check "usr/bin/cmux-proxyctl, mode 755" mode_is "$B/cmux-proxyctl" 755
check "usr/lib/cmux-proxy/libworkspace_net.so, mode 644" \
    mode_is "$DEST/usr/lib/cmux-proxy/libworkspace_net.so" 644
check "etc/cmux-proxy/cmux-proxy.yaml, the shipped conf" \
    cmp -s "$REPO/conf/cmux-proxy.yaml" "$DEST/etc/cmux-proxy/cmux-proxy.yaml"
check "etc/cmux-proxy/cmux-proxy.yaml, mode 640 (it may hold tokens)" \
    mode_is "$DEST/etc/cmux-proxy/cmux-proxy.yaml" 640
UNIT=$DEST/usr/lib/systemd/system/cmux-proxy.service
check "usr/lib/systemd/system/cmux-proxy.service, mode 644" mode_is "$UNIT" 644

if has_debug_info "$BIN"; then
    check "installed binary has no .debug_info (the source binary has one)" \
        eval '! has_debug_info "$B/cmux-proxy"'
else
    check "installed binary has no .debug_info (the source binary has none either)" \
        eval '! has_debug_info "$B/cmux-proxy"'
fi
check "the source binary is left as it was" test "$(sha256sum <"$BIN")" = "$SUM"
check "installed binary runs (--version)" eval '"$B/cmux-proxy" --version | grep -q "^cmux-proxy "'
check "installed binary accepts the installed conf (-t)" \
    eval '"$B/cmux-proxy" -t -c "$DEST/etc/cmux-proxy/cmux-proxy.yaml" >/dev/null 2>&1'

# The unit and cmux-proxyctl name the installed paths, and nothing under /usr/local.
check "unit: ExecStart runs /usr/bin/cmux-proxy" grep -q '^ExecStart=/usr/bin/cmux-proxy -d ' "$UNIT"
check "unit: ExecReload runs /usr/bin/cmux-proxyctl" grep -q '^ExecReload=/usr/bin/cmux-proxyctl reload' "$UNIT"
check "unit: conf is /etc/cmux-proxy/cmux-proxy.yaml" \
    grep -q '^Environment=CMUX_PROXY_CONF=/etc/cmux-proxy/cmux-proxy.yaml$' "$UNIT"
check "unit: pid file, error log and upgrade socket in /run/cmux-proxy (0700), private /tmp" eval \
    'grep -qx "PIDFile=/run/cmux-proxy/cmux-proxy.pid" "$UNIT" &&
     grep -qx "RuntimeDirectory=cmux-proxy" "$UNIT" &&
     grep -qx "RuntimeDirectoryMode=0700" "$UNIT" && grep -qx "PrivateTmp=yes" "$UNIT"'
check "conf: pid file, error log and upgrade socket under /run/cmux-proxy/" eval \
    '[ "$(grep -cE "^(pid_file|error_log|upgrade_sock): /run/cmux-proxy/" \
          "$DEST/etc/cmux-proxy/cmux-proxy.yaml")" = 3 ]'
check "unit: no /usr/local path left outside comments" eval '! grep -v "^#" "$UNIT" | grep -q /usr/local'
check "cmux-proxyctl: installed conf and binary filled in" eval \
    'grep -qx "INSTALLED_CONF=/etc/cmux-proxy/cmux-proxy.yaml" "$B/cmux-proxyctl" &&
     grep -qx "INSTALLED_BIN=/usr/bin/cmux-proxy" "$B/cmux-proxyctl"'
check "cmux-proxyctl: installed copy runs (--help)" eval '"$B/cmux-proxyctl" --help >/dev/null'

# ---- a second install keeps an edited conf ---------------------------------------------------
CONF=$DEST/etc/cmux-proxy/cmux-proxy.yaml
echo "# edited by the install test" >>"$CONF"
cp "$CONF" "$DEST/edited.yaml"
make "${MAKE_ARGS[@]}" install >"$LOG" 2>&1
check "second install succeeds" test $? = 0
check "second install keeps the edited conf" cmp -s "$CONF" "$DEST/edited.yaml"
check "second install puts the shipped conf beside it as cmux-proxy.yaml.new" \
    cmp -s "$REPO/conf/cmux-proxy.yaml" "$CONF.new"
check "cmux-proxy.yaml.new, mode 640" mode_is "$CONF.new" 640
check "second install says so" grep -q "kept .*cmux-proxy.yaml.*cmux-proxy.yaml.new" "$LOG"

# ---- uninstall -------------------------------------------------------------------------------
make "${MAKE_ARGS[@]}" uninstall >"$LOG" 2>&1
check "uninstall succeeds" test $? = 0
left=$(cd "$DEST" && find . -path ./edited.yaml -prune -o -type f -print | sort)
check "uninstall removes everything but the edited conf [left: $(echo $left)]" \
    test "$left" = "./etc/cmux-proxy/cmux-proxy.yaml"
check "uninstall says it kept the edited conf" grep -q "kept .*cmux-proxy.yaml" "$LOG"

# An unedited conf goes with the rest, and so do the directories made for the package.
rm -f "$CONF"
make "${MAKE_ARGS[@]}" install >/dev/null 2>&1 && make "${MAKE_ARGS[@]}" uninstall >/dev/null 2>&1
left=$(cd "$DEST" && find . -path ./edited.yaml -prune -o -type f -print | sort)
check "install then uninstall with an unedited conf leaves no file [left: $(echo $left)]" \
    test -z "$left"
check "uninstall removes usr/lib/cmux-proxy and etc/cmux-proxy" \
    eval '[ ! -e "$DEST/usr/lib/cmux-proxy" ] && [ ! -e "$DEST/etc/cmux-proxy" ]'

rm -f "$LOG"
summary
