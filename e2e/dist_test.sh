#!/usr/bin/env bash
# Test of `make dist` and scripts/install.sh: the archives are served from a loopback HTTP
# server and installed with CMUX_PROXY_BASE_URL into scratch folders (never /usr/local).
#
# usage: bash e2e/dist_test.sh BINARY      (make test-dist passes the test build)
# Prints PASS/FAIL per check, ends with "dist test: N passed, M failed", exits 1 on any
# failure.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SUITE="dist test"
# shellcheck source=e2e/checks.sh
. "$HERE/checks.sh"
BIN=$(binary_argument "$@") || exit 2
finish() {
    summary
    exit
}

SCRATCH=$(mktemp -d /tmp/cmux-dist-test.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$SCRATCH"
}
trap cleanup EXIT
# The installer's downloads go to the loopback server, never through a proxy.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export no_proxy='*'
# The installer is POSIX sh: run it with dash when there is one, which has no bashisms.
SH=$(command -v dash || echo sh)
INSTALLER=$REPO/scripts/install.sh

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$REPO/Cargo.toml" | head -n 1)
TARGET=$(uname -m)-unknown-linux-gnu
NAME=cmux-proxy-$VERSION-$TARGET
FAKE=999.0.0 # a later release, in the mirror "multi/" only

# ---- make dist -------------------------------------------------------------------------------
WWW=$SCRATCH/www
mkdir -p "$WWW"
if ! make -s -C "$REPO" dist BIN="$BIN" DIST_DIR="$WWW/dist" >"$SCRATCH/dist.log" 2>&1; then
    fail "make dist BIN=$BIN"
    sed 's/^/     /' "$SCRATCH/dist.log"
    finish
fi
check "make dist: $NAME.tar.gz and SHA256SUMS" \
    test -f "$WWW/dist/$NAME.tar.gz" -a -f "$WWW/dist/SHA256SUMS"
check "SHA256SUMS checks the archive" eval '(cd "$WWW/dist" && sha256sum -c --quiet SHA256SUMS)'
listing=$(tar -tzf "$WWW/dist/$NAME.tar.gz" | grep -v '/$' | sort | tr '\n' ' ')
want="$NAME/LICENSE $NAME/README.md $NAME/bin/cmux-proxy $NAME/bin/cmux-proxyctl \
$NAME/etc/cmux-proxy/cmux-proxy.yaml $NAME/lib/cmux-proxy/libworkspace_net.so \
$NAME/lib/systemd/system/cmux-proxy.service "
check "archive holds the make install layout under $NAME/" test "$listing" = "$want"
mkdir -p "$SCRATCH/unpacked"
tar -xzf "$WWW/dist/$NAME.tar.gz" -C "$SCRATCH/unpacked"
check "archived binary is stripped of debug info" \
    eval '! readelf -S "$SCRATCH/unpacked/$NAME/bin/cmux-proxy" | grep -q "\.debug_info"'

# The mirrors: "multi/" holds this release and a later fake one (its binary only prints its
# version); "bad/" a corrupted archive with the right SHA256SUMS; "missing/" no archive.
mkdir -p "$WWW/multi" "$WWW/bad" "$WWW/missing" "$SCRATCH/fake"
cp "$WWW/dist/$NAME.tar.gz" "$WWW/multi/"
cp -a "$SCRATCH/unpacked/$NAME" "$SCRATCH/fake/cmux-proxy-$FAKE-$TARGET"
printf '#!/bin/sh\necho "cmux-proxy %s (fake)"\n' "$FAKE" \
    >"$SCRATCH/fake/cmux-proxy-$FAKE-$TARGET/bin/cmux-proxy"
tar -C "$SCRATCH/fake" -czf "$WWW/multi/cmux-proxy-$FAKE-$TARGET.tar.gz" "cmux-proxy-$FAKE-$TARGET"
(cd "$WWW/multi" && sha256sum cmux-proxy-*.tar.gz >SHA256SUMS)
cp "$WWW/dist/SHA256SUMS" "$WWW/bad/"
cp "$WWW/dist/$NAME.tar.gz" "$WWW/bad/"
# Change one byte in the middle of the archive (to 1, or to 2 where it was 1).
size=$(stat -c %s "$WWW/bad/$NAME.tar.gz")
byte=$(od -An -tu1 -j $((size / 2)) -N 1 "$WWW/bad/$NAME.tar.gz" | tr -d ' ')
if [ "$byte" = 1 ]; then new='\002'; else new='\001'; fi
printf "$new" | dd of="$WWW/bad/$NAME.tar.gz" bs=1 seek=$((size / 2)) conv=notrunc status=none
check "the corrupted archive differs from the good one" \
    eval '! cmp -s "$WWW/bad/$NAME.tar.gz" "$WWW/dist/$NAME.tar.gz"'
cp "$WWW/dist/SHA256SUMS" "$WWW/missing/"

# ---- the loopback HTTP server (also the proxy's test upstream) --------------------------------
# socketserver.TCPServer, not http.server.HTTPServer: the latter looks up the host's name.
cat >"$SCRATCH/serve.py" <<'EOF'
import functools, http.server, socketserver, sys
class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
server = Server(("127.0.0.1", 0), functools.partial(Handler, directory=sys.argv[1]))
print(server.server_address[1], flush=True)
server.serve_forever()
EOF
python3 "$SCRATCH/serve.py" "$WWW" >"$SCRATCH/port" 2>"$SCRATCH/serve.log" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$SCRATCH/port" ] && break; sleep 0.1; done
PORT=$(head -n 1 "$SCRATCH/port")
[ -n "$PORT" ] || { fail "loopback HTTP server starts"; finish; }
URL=http://127.0.0.1:$PORT

# run_install LOG VAR=VALUE...: runs the installer with that environment; returns its status.
run_install() {
    local log=$1
    shift
    env "$@" "$SH" "$INSTALLER" >"$log" 2>&1
}
no_files() { [ -z "$(find "$1" -type f 2>/dev/null)" ]; }
no_temp_files() { [ -z "$(find "$1" -name '.*.new.*' 2>/dev/null)" ]; }
mode_is() { [ "$(stat -c %a "$1" 2>/dev/null)" = "$2" ]; }

# ---- a good install from dist/ as it is, which then serves a request -------------------------
P1=$SCRATCH/p1
run_install "$SCRATCH/good.log" CMUX_PROXY_BASE_URL="$URL/dist" CMUX_PROXY_BIN_DIR="$P1/bin"
rc=$?
check "install from dist/ (latest) succeeds" test $rc = 0
[ $rc = 0 ] || sed 's/^/     /' "$SCRATCH/good.log"
check "bin/cmux-proxy, mode 755" mode_is "$P1/bin/cmux-proxy" 755
check "bin/cmux-proxyctl, mode 755" mode_is "$P1/bin/cmux-proxyctl" 755
check "lib/cmux-proxy/libworkspace_net.so, mode 644" mode_is "$P1/lib/cmux-proxy/libworkspace_net.so" 644
check "lib/systemd/system/cmux-proxy.service, mode 644" \
    mode_is "$P1/lib/systemd/system/cmux-proxy.service" 644
check "etc/cmux-proxy/cmux-proxy.yaml, mode 640, the shipped conf" eval \
    'mode_is "$P1/etc/cmux-proxy/cmux-proxy.yaml" 640 &&
     cmp -s "$REPO/conf/cmux-proxy.yaml" "$P1/etc/cmux-proxy/cmux-proxy.yaml"'
check "installed binary is the archived one" \
    cmp -s "$P1/bin/cmux-proxy" "$SCRATCH/unpacked/$NAME/bin/cmux-proxy"
check "unit and cmux-proxyctl name the installed paths" eval \
    'grep -q "^ExecStart=$P1/bin/cmux-proxy -d " "$P1/lib/systemd/system/cmux-proxy.service" &&
     grep -q "^Environment=CMUX_PROXY_CONF=$P1/etc/cmux-proxy/cmux-proxy.yaml\$" "$P1/lib/systemd/system/cmux-proxy.service" &&
     grep -qx "INSTALLED_BIN=$P1/bin/cmux-proxy" "$P1/bin/cmux-proxyctl" &&
     grep -qx "INSTALLED_CONF=$P1/etc/cmux-proxy/cmux-proxy.yaml" "$P1/bin/cmux-proxyctl"'
check "installer prints what it installed and the next command" eval \
    'grep -q "^cmux-proxy $VERSION ($TARGET) installed:" "$SCRATCH/good.log" &&
     grep -q "^  $P1/bin/cmux-proxy\$" "$SCRATCH/good.log" && grep -q "^next: $P1/bin/cmux-proxy -c " "$SCRATCH/good.log"'
check "no temporary file left" no_temp_files "$P1"
check "installed binary reports $VERSION" eval '"$P1/bin/cmux-proxy" --version | grep -qx "cmux-proxy $VERSION"'

# Start it on a free loopback port with the installed conf; one request through to the HTTP
# server above as the target.
LPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$P1/bin/cmux-proxy" -c "$P1/etc/cmux-proxy/cmux-proxy.yaml" --listen "127.0.0.1:$LPORT" \
    --admin-listen off --access-log off >"$SCRATCH/proxy.log" 2>&1 &
PIDS+=($!)
body=""
for _ in $(seq 100); do
    body=$(curl -sS --noproxy '*' --max-time 2 -H "X-Cmux-Port-Internal: $PORT" \
        "http://127.0.0.1:$LPORT/dist/SHA256SUMS" 2>/dev/null) && break
    sleep 0.1
done
check "installed proxy serves a request through to a loopback target" \
    test "$body" = "$(cat "$WWW/dist/SHA256SUMS")"
[ "$body" = "$(cat "$WWW/dist/SHA256SUMS")" ] || sed 's/^/     /' "$SCRATCH/proxy.log" | tail -n 5

# ---- a pinned version, then an upgrade in place -----------------------------------------------
P2=$SCRATCH/p2
run_install "$SCRATCH/pin.log" CMUX_PROXY_BASE_URL="$URL/multi" CMUX_PROXY_BIN_DIR="$P2/bin" \
    CMUX_PROXY_VERSION="$VERSION"
check "pinned CMUX_PROXY_VERSION=$VERSION installs $VERSION, not the later $FAKE" eval \
    '"$P2/bin/cmux-proxy" --version 2>/dev/null | grep -qx "cmux-proxy $VERSION"'
echo "# edited by the dist test" >>"$P2/etc/cmux-proxy/cmux-proxy.yaml"
cp "$P2/etc/cmux-proxy/cmux-proxy.yaml" "$SCRATCH/edited.yaml"
run_install "$SCRATCH/upgrade.log" CMUX_PROXY_BASE_URL="$URL/multi" CMUX_PROXY_BIN_DIR="$P2/bin"
rc=$?
check "second run (latest) succeeds" test $rc = 0
[ $rc = 0 ] || sed 's/^/     /' "$SCRATCH/upgrade.log"
check "second run upgrades in place to the latest, $FAKE" \
    eval '"$P2/bin/cmux-proxy" --version | grep -qx "cmux-proxy $FAKE (fake)"'
check "upgrade keeps the edited conf, the shipped one beside it as .new" eval \
    'cmp -s "$SCRATCH/edited.yaml" "$P2/etc/cmux-proxy/cmux-proxy.yaml" &&
     cmp -s "$REPO/conf/cmux-proxy.yaml" "$P2/etc/cmux-proxy/cmux-proxy.yaml.new"'
check "upgrade says it kept the conf" grep -q "kept: it differs" "$SCRATCH/upgrade.log"
check "upgrade leaves no temporary file" no_temp_files "$P2"

# ---- refusals: one line on stderr, non-zero exit, nothing installed --------------------------
# refused DESC LOG PATTERN DIR VAR=VALUE...
refused() {
    local desc=$1 log=$2 pattern=$3 dir=$4
    shift 4
    run_install "$log" CMUX_PROXY_BIN_DIR="$dir/bin" "$@"
    local rc=$?
    check "$desc: exit non-zero" test $rc != 0
    check "$desc: one line saying why" eval \
        '[ "$(wc -l <"$log")" = 1 ] && grep -q "^cmux-proxy install: .*$pattern" "$log"'
    [ "$(wc -l <"$log")" = 1 ] || sed 's/^/     /' "$log"
    check "$desc: nothing installed" no_files "$dir"
}
refused "corrupted archive" "$SCRATCH/bad.log" "checksum mismatch" "$SCRATCH/p3" \
    CMUX_PROXY_BASE_URL="$URL/bad"
refused "unknown architecture" "$SCRATCH/arch.log" "unsupported architecture 'mips64'" \
    "$SCRATCH/p4" CMUX_PROXY_BASE_URL="$URL/dist" CMUX_PROXY_ARCH=mips64
refused "failed download" "$SCRATCH/missing.log" "download failed" "$SCRATCH/p5" \
    CMUX_PROXY_BASE_URL="$URL/missing"
refused "version not in the release" "$SCRATCH/nover.log" "no checksum for" "$SCRATCH/p6" \
    CMUX_PROXY_BASE_URL="$URL/dist" CMUX_PROXY_VERSION=0.0.1
# A corrupted archive over an existing install leaves that install as it was.
run_install "$SCRATCH/bad2.log" CMUX_PROXY_BASE_URL="$URL/bad" CMUX_PROXY_BIN_DIR="$P2/bin"
rc=$?
check "corrupted archive over an install: refused, the installed binary untouched" eval \
    '[ $rc != 0 ] && "$P2/bin/cmux-proxy" --version | grep -qx "cmux-proxy $FAKE (fake)"'

# ---- make deb: what the package holds (installing it would change this machine) ----------------
if ! command -v dpkg-deb >/dev/null; then
    echo "SKIP make deb: no dpkg-deb"
elif ! make -s -C "$REPO" deb BIN="$BIN" DIST_DIR="$SCRATCH/deb" >"$SCRATCH/deb.log" 2>&1; then
    fail "make deb BIN=$BIN"
    sed 's/^/     /' "$SCRATCH/deb.log"
else
    DEB=$SCRATCH/deb/cmux-proxy_${VERSION}_$(dpkg --print-architecture).deb
    check "make deb: $(basename "$DEB")" test -f "$DEB"
    contents=$(dpkg-deb --contents "$DEB" | awk '$1 !~ /^d/ {print $1, $NF}' | LC_ALL=C sort | tr '\n' ' ')
    want="-rw-r----- ./etc/cmux-proxy/cmux-proxy.yaml -rw-r--r-- ./usr/lib/cmux-proxy/libworkspace_net.so \
-rw-r--r-- ./usr/lib/systemd/system/cmux-proxy.service \
-rw-r--r-- ./usr/lib/systemd/system/cmux-proxy.service.d/cmux-proxy-user.conf \
-rw-r--r-- ./usr/share/doc/cmux-proxy/copyright -rwxr-xr-x ./usr/bin/cmux-proxy -rwxr-xr-x ./usr/bin/cmux-proxyctl "
    check "deb: files and modes under /usr and /etc" test "$contents" = "$want"
    [ "$contents" = "$want" ] || echo "     got: $contents"
    check "deb: control names the version, the architecture and the dependencies" eval \
        'dpkg-deb --field "$DEB" Version | grep -qx "$VERSION" &&
         dpkg-deb --field "$DEB" Architecture | grep -qx "$(dpkg --print-architecture)" &&
         dpkg-deb --field "$DEB" Depends | grep -q libc6'
    mkdir -p "$SCRATCH/debx/ctl"
    dpkg-deb -x "$DEB" "$SCRATCH/debx"
    dpkg-deb -e "$DEB" "$SCRATCH/debx/ctl"
    check "deb: the conf is a conffile" grep -qx /etc/cmux-proxy/cmux-proxy.yaml "$SCRATCH/debx/ctl/conffiles"
    check "deb: postinst, prerm, postrm pass sh -n" eval \
        'for f in postinst prerm postrm; do sh -n "$SCRATCH/debx/ctl/$f" || exit 1; done'
    check "deb: the unit names /usr/bin and runs as the cmux-proxy user" eval \
        'grep -q "^ExecStart=/usr/bin/cmux-proxy -d " "$SCRATCH/debx/usr/lib/systemd/system/cmux-proxy.service" &&
         grep -qx "User=cmux-proxy" "$SCRATCH/debx/usr/lib/systemd/system/cmux-proxy.service.d/cmux-proxy-user.conf"'
    if command -v systemd-analyze >/dev/null; then
        # Verified beside its drop-in, with the paths pointed at the unpacked binaries.
        V=$SCRATCH/verify
        mkdir -p "$V/cmux-proxy.service.d"
        sed "s|/usr/bin/|$SCRATCH/debx/usr/bin/|g" \
            "$SCRATCH/debx/usr/lib/systemd/system/cmux-proxy.service" >"$V/cmux-proxy.service"
        cp "$SCRATCH/debx/usr/lib/systemd/system/cmux-proxy.service.d/"*.conf "$V/cmux-proxy.service.d/"
        out=$(systemd-analyze verify "$V/cmux-proxy.service" 2>&1)
        rc=$?
        check "deb: systemd-analyze verify of the unit and its drop-in is clean" eval \
            '[ $rc = 0 ] && [ -z "$out" ]'
        [ -z "$out" ] || echo "$out" | sed 's/^/     /'
    else
        echo "SKIP systemd-analyze verify: no systemd-analyze"
    fi
fi

check "install.sh passes sh -n and dash -n" eval \
    'sh -n "$INSTALLER" && { ! command -v dash >/dev/null || dash -n "$INSTALLER"; }'

finish
