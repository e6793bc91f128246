#!/usr/bin/env bash
# Heap per idle WebSocket, by allocation site: cmux-proxy and bare pingora under valgrind's
# massif, each holding MS_CONNS idle WebSockets (cmux-loadgen idle-ws) to the benchmark's
# echo server. massif sees only the system allocator, and both binaries ship with jemalloc,
# so this builds copies without it: bare pingora with --no-default-features, cmux-proxy
# from a copy of the tracked sources (in target/massif-src, never src/ itself) with its
# #[global_allocator] lines taken out; both with the release-tests profile into
# target/massif (the first build takes a few minutes, later ones are incremental).
# Loopback only; every process it starts is ended on exit.
# Heap bytes are what was requested, not resident pages: a 64 KiB buffer of which one page
# was written counts 64 KiB here and 4 KiB in RSS (bench/run.sh's figure).
# Usage: bash bench/massif.sh   (knobs: MS_CONNS (1000), MS_TARGETS ("cmux pingora"),
# MS_CMUX_BIN / MS_PINGORA_BIN (system-allocator binaries built elsewhere: no build),
# MS_KEEP_TMP=1, MS_OUT (bench/massif.txt))
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CONNS=${MS_CONNS:-1000}
TARGETS=${MS_TARGETS:-"cmux pingora"}
OUT=${MS_OUT:-bench/massif.txt}
LOADGEN=target/release/cmux-loadgen

log() { printf '[massif %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
command -v valgrind >/dev/null || die "valgrind missing (apt-get install valgrind)"
ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------------------- build
CMUX_BIN=${MS_CMUX_BIN:-}
PINGORA_BIN=${MS_PINGORA_BIN:-}
if [ -z "$CMUX_BIN" ] || [ -z "$PINGORA_BIN" ]; then
  src=target/massif-src
  rm -rf "$src" && mkdir -p "$src"
  git ls-files -z | xargs -0 cp --parents -t "$src"
  # The allocator lines of the proxy's binary, and nothing else, are removed in the copy.
  sed -i -e '/^#\[global_allocator\]$/d' -e '/^static GLOBAL: tikv_jemallocator::Jemalloc/d' "$src/src/main.rs"
  ! grep -q global_allocator "$src/src/main.rs" || die "could not remove the allocator from the copy"
  log "cargo build --profile release-tests (system allocator) into target/massif"
  (cd "$src" && CARGO_TARGET_DIR="$ROOT/target/massif" cargo build -q --profile release-tests \
    -p cmux-proxy -p pingora-bare --no-default-features)
  CMUX_BIN=${CMUX_BIN:-target/massif/release-tests/cmux-proxy}
  PINGORA_BIN=${PINGORA_BIN:-target/massif/release-tests/pingora-bare}
fi
[ -x "$LOADGEN" ] || cargo build --release -q -p cmux-loadgen

# ---------------------------------------------------------------------------- processes
TMP=$(mktemp -d /tmp/cmux-massif.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "${MS_KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() { # wait_port PORT: up to 60 s (valgrind starts slowly)
  local _
  for _ in $(seq 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

read -r WS P_PROXY <<<"$("$LOADGEN" free-ports 2)"
"$LOADGEN" ws-echo-server --listen "127.0.0.1:$WS" >"$TMP/ws.log" 2>&1 &
PIDS+=($!)
wait_port "$WS" || die "echo server did not start"
printf 'version: 1\nthreads: 1\npid_file: %s/p.pid\nupgrade_sock: %s/p.sock\n' "$TMP" "$TMP" >"$TMP/conf.yaml"
export CMUX_ACCESS_LOG=off CMUX_ADMIN_LISTEN=off

# massif TARGET: start the proxy under massif, open CONNS idle WebSockets through it, hold
# them while massif takes its snapshots, then stop the proxy (massif writes at exit).
massif() {
  local name=$1 pid lg ready=$TMP/ready.$1 bin args
  case $name in
    cmux) bin=$CMUX_BIN; args=(-c "$TMP/conf.yaml" --listen "127.0.0.1:$P_PROXY") ;;
    pingora) bin=$PINGORA_BIN; args=(--conf "$TMP/conf.yaml" --listen "127.0.0.1:$P_PROXY") ;;
    *) die "unknown target $name (cmux pingora)" ;;
  esac
  valgrind --tool=massif --depth=40 --threshold=0.5 --detailed-freq=1 --max-snapshots=200 \
    --massif-out-file="$TMP/$name.massif" "$bin" "${args[@]}" >"$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$P_PROXY" || die "$name did not listen under valgrind: $(tail -3 "$TMP/$name.log")"
  "$LOADGEN" idle-ws --addr "127.0.0.1:$P_PROXY" --port "$WS" --conns "$CONNS" --concurrency 16 \
    --hold 600 --ready-file "$ready" >"$TMP/idle-$name.log" 2>&1 &
  lg=$!
  PIDS+=("$lg")
  for _ in $(seq 1800); do [ -s "$ready" ] && break; kill -0 "$lg" 2>/dev/null || break; sleep 0.1; done
  [ -s "$ready" ] || die "$name: idle WebSockets did not open: $(tail -3 "$TMP/idle-$name.log")"
  sleep 5 # a few more snapshots at the plateau
  # The connections first, then the proxy: SIGINT is pingora's fast shutdown (SIGTERM
  # would wait for the grace period); massif writes its file as the process exits.
  kill -TERM "$lg" 2>/dev/null || true
  wait "$lg" 2>/dev/null || true
  kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  [ -s "$TMP/$name.massif" ] || die "$name: no massif output"
  python3 bench/massif-sites.py "$TMP/$name.massif" "$CONNS" 20 >"$TMP/$name.sites"
  log "$name: $(head -1 "$TMP/$name.sites")"
  {
    echo "## $name: $CONNS idle WebSockets (massif's peak snapshot, by allocation site)"
    cat "$TMP/$name.sites"
    echo
  } >>"$TMP/report.txt"
}

: >"$TMP/report.txt"
for t in $TARGETS; do massif "$t"; done
cp "$TMP/report.txt" "$OUT"
log "written to $OUT"
