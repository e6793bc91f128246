#!/usr/bin/env bash
# End-to-end suite: workspace isolation by the LD_PRELOAD shim, and routing by the proxy.
#
# Runs on the host (no Docker, loopback only). In a temporary CMUX_WORKSPACE_ROOT it makes
# workspace directories, starts real dev servers inside them with the shim preloaded (Python's
# http.server handler on 0.0.0.0 and on ::1, a Node http server on "localhost", Redis), all on
# the same ports in two workspaces, and checks isolation directly and through the proxy; then a
# stress run: STRESS_N workspaces on STRESS_PORT queried by STRESS_CONC parallel clients; then
# gRPC and h2c through the proxy (e2e/grpc_e2e.py, with the python module grpcio).
#
# usage: bash e2e/run.sh            (after `cargo build --release` and `make -C ldpreload`)
# env:   CMUX_PROXY_BIN   proxy binary (default target/release/cmux-proxy, relative to the repo)
#        CMUX_SHIM        the shim (default ldpreload/libworkspace_net.so)
#        STRESS_N=32 STRESS_PORT=(a free port) STRESS_CONC=16 STRESS_REQUESTS=STRESS_N*20
#        E2E_TIMEOUT=300  bound on the whole suite, seconds;  E2E_KEEP=1 keeps the temp dir
# Prints PASS/FAIL per step (SKIP, counted, for a step that cannot run on this host), ends
# with "N passed, M failed, K skipped", exits 1 on any failure.
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)

# The whole suite runs under timeout(1), which also signals every process it started.
if [ -z "${CMUX_E2E_INNER:-}" ]; then
  CMUX_E2E_INNER=1 timeout -k 10 "${E2E_TIMEOUT:-300}" bash "$HERE/run.sh" "$@"
  rc=$?
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "FAIL e2e suite exceeded E2E_TIMEOUT=${E2E_TIMEOUT:-300}s"
  fi
  exit $rc
fi

# ---- settings ------------------------------------------------------------------------------
abs() { case "$1" in /*) echo "$1" ;; *) echo "$REPO/$1" ;; esac; }
SHIM=$(abs "${CMUX_SHIM:-ldpreload/libworkspace_net.so}")
PROXY_BIN=$(abs "${CMUX_PROXY_BIN:-target/release/cmux-proxy}")
STRESS_N=${STRESS_N:-32}
STRESS_PORT=${STRESS_PORT:-} # a free port when not given (step_stress)
STRESS_CONC=${STRESS_CONC:-16}
STRESS_REQUESTS=${STRESS_REQUESTS:-$((STRESS_N * 20))}
SPEC_DIR=${CMUX_SPEC_DIR:-$REPO/spec}

# Nothing of the caller's may leak into host-side commands: only in_ws preloads the shim,
# and no CMUX_* variable (the proxy's settings, the shim's) is left: the suite's own were
# read above.
unset LD_PRELOAD http_proxy https_proxy all_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY
for var in $(compgen -e); do
  case $var in CMUX_*) unset "$var" ;; esac
done
TMP=$(mktemp -d /tmp/cmux-e2e.XXXXXX)
TMP=$(cd "$TMP" && pwd -P) # canonical, as getcwd() in the shim sees it
export CMUX_WORKSPACE_ROOT=$TMP/ws
mkdir -p "$CMUX_WORKSPACE_ROOT" "$TMP/log"
CURL=(curl -sS --noproxy '*' --max-time 5)

# ---- bookkeeping ---------------------------------------------------------------------------
PASSED=0
FAILED=0
SKIPPED=0
PIDS=()
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }
skip() { SKIPPED=$((SKIPPED + 1)); echo "SKIP $*"; } # counted, and shown in the summary
# expect DESC GOT WANT: exact comparison, shows both on failure
expect() { if [ "$2" == "$3" ]; then pass "$1"; else fail "$1  [got: ${2:0:200}] [want: $3]"; fi; }
# expect_match DESC GOT GLOB
expect_match() {
  # shellcheck disable=SC2053
  if [[ "$2" == $3 ]]; then pass "$1"; else fail "$1  [got: ${2:0:200}] [want: $3]"; fi
}

stop_pid() { # TERM, up to 3 s of grace, then KILL; only ever our own pids
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 30; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

finish() {
  local pid
  trap - EXIT INT TERM
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [ "${E2E_KEEP:-}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
  [ "$FAILED" -eq 0 ]
  exit $?
}
# shellcheck disable=SC2317  # invoked by the trap
interrupted() { fail "suite interrupted (signal or E2E_TIMEOUT)"; finish; }
trap finish EXIT
trap interrupted INT TERM

# ---- helpers -------------------------------------------------------------------------------
# in_ws WS CMD...: run CMD inside workspace WS (its directory as cwd) with the shim preloaded.
# The shim finds the workspace from the cwd, as it would for a developer's shell.
in_ws() {
  local ws=$1
  shift
  (cd "$CMUX_WORKSPACE_ROOT/$ws" && exec env LD_PRELOAD="$SHIM" "$@")
}

# start_in_ws WS LOG CMD...: in the background; sets LAST_PID (the server's own pid).
start_in_ws() {
  local ws=$1 log=$2
  shift 2
  (cd "$CMUX_WORKSPACE_ROOT/$ws" && exec env LD_PRELOAD="$SHIM" "$@") >"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

# wait_listening LOG PID [SECONDS]: until LOG has "listening on ADDR"; prints ADDR.
wait_listening() {
  local log=$1 pid=$2 deadline=$((SECONDS + ${3:-15})) line
  while [ $SECONDS -lt "$deadline" ]; do
    line=$(grep -m1 '^listening on ' "$log" 2>/dev/null) && {
      echo "${line#listening on }"
      return 0
    }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  echo "not listening: $(tail -c 300 "$log" 2>/dev/null | tr '\n' ' ')"
  return 1
}

# wait_tcp HOST PORT [SECONDS]: until a TCP connect from the host (no shim) succeeds.
wait_tcp() {
  local deadline=$((SECONDS + ${3:-15}))
  while [ $SECONDS -lt "$deadline" ]; do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

free_ports() { # N distinct ports free on 127.0.0.1, so the host has nothing there
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# host_curl ARGS...: from the host, no shim: prints the body, or "curl-exit-N" on failure.
host_curl() { "${CURL[@]}" "$@" 2>/dev/null || echo "curl-exit-$?"; }
ws_curl() { # ws_curl WS ARGS...: the same from inside a workspace
  local ws=$1
  shift
  in_ws "$ws" "${CURL[@]}" "$@" 2>/dev/null || echo "curl-exit-$?"
}
status_of() { "${CURL[@]}" -o /dev/null -w '%{http_code}' "$@" 2>/dev/null; }

# ---- 0. prerequisites ----------------------------------------------------------------------
step_prerequisites() {
  local need=0 cmd
  for cmd in redis-server redis-cli curl python3; do
    command -v "$cmd" >/dev/null 2>&1 || need=1
  done
  python3 -c 'import grpc' >/dev/null 2>&1 || need=1
  [ $need -eq 1 ] && bash "$HERE/deps.sh"
  PY=$(python3 -c 'import sys; print(sys.executable)') # skip pyenv-style wrapper scripts
  NODE=$(command -v node || true)
  # A host may have no IPv6 loopback: the [::1] steps are then skipped, visibly.
  if "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    HAVE_V6=1
  else
    HAVE_V6=
    skip "no IPv6 loopback (::1) on this host: the [::1] servers and their checks"
  fi
  [ -n "$NODE" ] || skip "no node on PATH: the Node.js servers and their checks"
  if [ -f "$SHIM" ]; then pass "shim built: $SHIM"; else fail "shim missing: $SHIM (make -C ldpreload)"; fi
  if [ -x "$PROXY_BIN" ]; then pass "proxy binary: $PROXY_BIN"; else fail "proxy binary missing: $PROXY_BIN"; fi
  if command -v redis-server >/dev/null; then pass "redis-server present"; else fail "redis-server missing (e2e/deps.sh)"; fi
  if [ -f "$SPEC_DIR/workspace-addresses.tsv" ]; then
    local out
    out=$("$PY" "$HERE/wsname.py" --check "$SPEC_DIR/workspace-addresses.tsv")
    expect "the suite's own name rule (wsname.py) passes spec/workspace-addresses.tsv" "$?" "0"
  else
    fail "vectors missing: $SPEC_DIR/workspace-addresses.tsv"
  fi
  [ -f "$SHIM" ] || finish
}

# ---- 1. dev servers in two workspaces on the same ports -------------------------------------
WS_A=workspace-1 # 127.18.0.1
WS_B=workspace-2 # 127.18.0.2
WS_IDLE=workspace-3 # exists, nothing listens in it
WS_SPARE=workspace-4

step_servers() {
  local ws addr
  read -r P_HTTP P_V6 P_NODE P_REDIS P_PROXY <<<"$(free_ports 5)"
  for ws in $WS_A $WS_B $WS_IDLE $WS_SPARE; do
    mkdir -p "$CMUX_WORKSPACE_ROOT/$ws/src"
    echo "$ws" >"$CMUX_WORKSPACE_ROOT/$ws/whoami.txt"
  done
  for ws in $WS_A $WS_B; do
    local n=${ws#workspace-}
    start_in_ws "$ws" "$TMP/log/http-$ws.log" "$PY" -u "$HERE/wsserver.py" 0.0.0.0 "$P_HTTP"
    addr=$(wait_listening "$TMP/log/http-$ws.log" "$LAST_PID")
    expect "python server on 0.0.0.0:$P_HTTP in $ws listens at its workspace address" \
      "$addr" "127.18.0.$n:$P_HTTP"

    if [ -n "$HAVE_V6" ]; then
      start_in_ws "$ws" "$TMP/log/v6-$ws.log" "$PY" -u "$HERE/wsserver.py" ::1 "$P_V6"
      addr=$(wait_listening "$TMP/log/v6-$ws.log" "$LAST_PID")
      expect "python server on [::1]:$P_V6 in $ws listens at the mapped workspace address" \
        "$addr" "::ffff:127.18.0.$n:$P_V6"
    fi

    if [ -n "$NODE" ]; then
      start_in_ws "$ws" "$TMP/log/node-$ws.log" "$NODE" "$HERE/node_server.js" "$P_NODE"
      addr=$(wait_listening "$TMP/log/node-$ws.log" "$LAST_PID")
      expect "node server on localhost:$P_NODE in $ws listens at its workspace address" \
        "$addr" "127.18.0.$n:$P_NODE"
    fi

    # Redis' own default: "bind 127.0.0.1 -::1". The shim moves 127.0.0.1 and refuses the
    # v6-only ::1 socket with EADDRNOTAVAIL, which the "-" lets Redis skip.
    mkdir -p "$TMP/redis-$ws"
    printf '%s\n' "port $P_REDIS" "bind 127.0.0.1 -::1" "dir $TMP/redis-$ws" 'save ""' \
      "appendonly no" "daemonize no" "protected-mode yes" 'logfile ""' >"$TMP/redis-$ws/redis.conf"
    start_in_ws "$ws" "$TMP/log/redis-$ws.log" redis-server "$TMP/redis-$ws/redis.conf" \
      --save '' --appendonly no
    if wait_tcp "127.18.0.$n" "$P_REDIS"; then
      pass "redis (bind 127.0.0.1 -::1) in $ws listens at 127.18.0.$n:$P_REDIS"
    else
      fail "redis in $ws not listening: $(tail -c 300 "$TMP/log/redis-$ws.log")"
    fi
  done
}

# ---- 2. isolation without the proxy --------------------------------------------------------
step_isolation() {
  local ws n
  for ws in $WS_A $WS_B; do
    n=${ws#workspace-}
    expect "$ws reaches its own python server at 127.0.0.1:$P_HTTP" \
      "$(ws_curl "$ws" "http://127.0.0.1:$P_HTTP/whoami.txt")" "$ws"
    expect "$ws reaches its own python server at localhost:$P_HTTP" \
      "$(ws_curl "$ws" "http://localhost:$P_HTTP/whoami.txt")" "$ws"
    [ -n "$HAVE_V6" ] && expect "$ws reaches its own [::1] server at [::1]:$P_V6" \
      "$(ws_curl "$ws" "http://[::1]:$P_V6/whoami")" "python $ws ::ffff:127.18.0.$n:$P_V6"
    if [ -n "$NODE" ]; then
      expect "$ws reaches its own node server at localhost:$P_NODE" \
        "$(ws_curl "$ws" "http://localhost:$P_NODE/")" "node $ws 127.18.0.$n:$P_NODE"
    fi
    expect "$ws's server answers at its workspace address from the host" \
      "$(host_curl "http://127.18.0.$n:$P_HTTP/whoami.txt")" "$ws"
  done
  # curl exit 7: could not connect.
  expect "host 127.0.0.1:$P_HTTP reaches no workspace server" \
    "$(host_curl "http://127.0.0.1:$P_HTTP/")" "curl-exit-7"
  [ -n "$HAVE_V6" ] && expect "host [::1]:$P_V6 reaches no workspace server" \
    "$(host_curl "http://[::1]:$P_V6/")" "curl-exit-7"
  [ -n "$NODE" ] && expect "host localhost:$P_NODE reaches no workspace server" \
    "$(host_curl "http://localhost:$P_NODE/")" "curl-exit-7"
  expect "$WS_IDLE (nothing listening) does not reach another workspace's server" \
    "$(ws_curl "$WS_IDLE" "http://127.0.0.1:$P_HTTP/")" "curl-exit-7"
  [ -n "$HAVE_V6" ] && expect "$WS_IDLE at [::1] does not reach another workspace's server" \
    "$(ws_curl "$WS_IDLE" "http://[::1]:$P_V6/")" "curl-exit-7"
  # Cross-workspace by address: allowed by default, refused in strict mode.
  expect "default: $WS_A can reach $WS_B by its address 127.18.0.2" \
    "$(ws_curl "$WS_A" "http://127.18.0.2:$P_HTTP/whoami.txt")" "$WS_B"
  expect "strict: $WS_A cannot reach $WS_B by its address (ECONNREFUSED)" \
    "$(in_ws "$WS_A" env CMUX_PRELOAD_STRICT=1 "${CURL[@]}" "http://127.18.0.2:$P_HTTP/" 2>/dev/null || echo "curl-exit-$?")" \
    "curl-exit-7"
  expect "strict: $WS_A still reaches its own server" \
    "$(in_ws "$WS_A" env CMUX_PRELOAD_STRICT=1 "${CURL[@]}" "http://127.0.0.1:$P_HTTP/whoami.txt" 2>/dev/null)" \
    "$WS_A"
}

# ---- 3. a second server on a port already in use in the workspace ---------------------------
step_addr_in_use() {
  local out rc
  out=$(in_ws "$WS_A" timeout 10 "$PY" "$HERE/wsserver.py" 0.0.0.0 "$P_HTTP" 2>&1)
  rc=$?
  expect_match "second python server on :$P_HTTP in $WS_A fails: address already in use" \
    "rc=$rc $out" "rc=1 *Address already in use*"
  if [ -n "$NODE" ]; then
    out=$(in_ws "$WS_B" timeout 10 "$NODE" "$HERE/node_server.js" "$P_NODE" 2>&1)
    rc=$?
    expect_match "second node server on localhost:$P_NODE in $WS_B fails: EADDRINUSE" \
      "rc=$rc $out" "rc=1 EADDRINUSE*address already in use*"
  fi
  out=$(in_ws "$WS_A" timeout 10 redis-server --port "$P_REDIS" --bind 127.0.0.1 \
    --save '' --appendonly no --dir "$TMP" 2>&1)
  rc=$?
  expect_match "second redis on :$P_REDIS in $WS_A fails: address already in use" \
    "rc=$rc $out" "rc=1 *ddress already in use*"
  # The same port in a workspace of its own is free.
  start_in_ws "$WS_SPARE" "$TMP/log/http-spare.log" "$PY" -u "$HERE/wsserver.py" 0.0.0.0 "$P_HTTP"
  local pid=$LAST_PID
  out=$(wait_listening "$TMP/log/http-spare.log" "$pid")
  expect "the same port in another workspace ($WS_SPARE) is free" "$out" "127.18.0.4:$P_HTTP"
  stop_pid "$pid"
}

# ---- 4. through the proxy ------------------------------------------------------------------
step_proxy() {
  if [ ! -x "$PROXY_BIN" ]; then
    fail "proxy steps not run: no proxy binary at $PROXY_BIN"
    return
  fi
  # The proxy is not a workspace process: no shim, cwd outside the workspace root.
  # The admin listener is off: its default port may be held by another program here.
  (cd "$TMP" && exec "$PROXY_BIN" --listen "127.0.0.1:$P_PROXY" --admin-listen off --access-log off) >"$TMP/log/proxy.log" 2>&1 &
  PROXY_PID=$!
  PIDS+=("$PROXY_PID")
  if ! wait_tcp 127.0.0.1 "$P_PROXY" 30; then
    fail "proxy not listening on 127.0.0.1:$P_PROXY: $(tail -c 300 "$TMP/log/proxy.log")"
    return
  fi
  pass "proxy listening on 127.0.0.1:$P_PROXY"
  local P=http://127.0.0.1:$P_PROXY ws n
  for ws in $WS_A $WS_B; do
    n=${ws#workspace-}
    expect "proxy: header routing to $ws:$P_HTTP" \
      "$(host_curl -H "X-Cmux-Port-Internal: $P_HTTP" -H "X-Cmux-Workspace-Internal: $ws" "$P/whoami.txt")" "$ws"
    expect "proxy: Host $ws-$P_HTTP.localhost routing" \
      "$(host_curl -H "Host: $ws-$P_HTTP.localhost" "$P/whoami.txt")" "$ws"
    [ -n "$HAVE_V6" ] && expect "proxy: header routing to $ws's [::1] server" \
      "$(host_curl -H "X-Cmux-Port-Internal: $P_V6" -H "X-Cmux-Workspace-Internal: $ws" "$P/whoami")" \
      "python $ws ::ffff:127.18.0.$n:$P_V6"
    if [ -n "$NODE" ]; then
      expect "proxy: header routing to $ws's node server" \
        "$(host_curl -H "X-Cmux-Port-Internal: $P_NODE" -H "X-Cmux-Workspace-Internal: $ws" "$P/")" \
        "node $ws 127.18.0.$n:$P_NODE"
      expect "proxy: $ws-$P_NODE.localhost (curl --resolve) to $ws's node server" \
        "$(host_curl --resolve "$ws-$P_NODE.localhost:$P_PROXY:127.0.0.1" "http://$ws-$P_NODE.localhost:$P_PROXY/")" \
        "node $ws 127.18.0.$n:$P_NODE"
    fi
  done
  expect "proxy: workspace with nothing listening -> 502" \
    "$(status_of -H "X-Cmux-Port-Internal: $P_HTTP" -H "X-Cmux-Workspace-Internal: $WS_IDLE" "$P/")" "502"
  expect "proxy: $WS_IDLE-$P_HTTP.localhost -> 502" \
    "$(status_of -H "Host: $WS_IDLE-$P_HTTP.localhost" "$P/")" "502"
  expect_match "proxy: the 502 names the target address" \
    "$(host_curl -H "X-Cmux-Port-Internal: $P_HTTP" -H "X-Cmux-Workspace-Internal: $WS_IDLE" "$P/")" \
    "*127.18.0.3:$P_HTTP*"
  expect "proxy: no workspace -> host 127.0.0.1:$P_HTTP, where nothing listens -> 502" \
    "$(status_of -H "X-Cmux-Port-Internal: $P_HTTP" "$P/")" "502"
}

# ---- 5. two databases, separate data ------------------------------------------------------
step_redis() {
  local rcli=(redis-cli -p "$P_REDIS")
  in_ws "$WS_A" timeout 10 "${rcli[@]}" set owner "$WS_A" >/dev/null 2>&1
  in_ws "$WS_B" timeout 10 "${rcli[@]}" set owner "$WS_B" >/dev/null 2>&1
  in_ws "$WS_A" timeout 10 "${rcli[@]}" set only-a 1 >/dev/null 2>&1
  expect "redis: $WS_A reads its own value" "$(in_ws "$WS_A" timeout 10 "${rcli[@]}" get owner 2>&1)" "$WS_A"
  expect "redis: $WS_B reads its own value" "$(in_ws "$WS_B" timeout 10 "${rcli[@]}" get owner 2>&1)" "$WS_B"
  expect "redis: $WS_B does not see $WS_A's key" "$(in_ws "$WS_B" timeout 10 "${rcli[@]}" exists only-a 2>&1)" "0"
  expect "redis: $WS_A via localhost" "$(in_ws "$WS_A" timeout 10 "${rcli[@]}" -h localhost get owner 2>&1)" "$WS_A"
  expect "redis: host 127.18.0.2 is $WS_B's" "$(timeout 10 redis-cli -h 127.18.0.2 -p "$P_REDIS" get owner 2>&1)" "$WS_B"
  expect_match "redis: host 127.0.0.1:$P_REDIS reaches neither" \
    "$(timeout 10 redis-cli -h 127.0.0.1 -p "$P_REDIS" get owner 2>&1)" "*onnection refused*"
}

# ---- 6. stress -----------------------------------------------------------------------------
step_stress() {
  local names=() addrs=() pids=() name addr i ok=0 bad="" out
  # A port free on every address right now (bound on 0.0.0.0), unless given.
  [ -n "$STRESS_PORT" ] || STRESS_PORT=$("$PY" -c 'import socket
s = socket.socket()
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1])')
  while read -r name addr; do
    names+=("$name")
    addrs+=("$addr")
  done < <("$PY" "$HERE/wsname.py" --pick "$STRESS_N")
  for name in "${names[@]}"; do
    mkdir -p "$CMUX_WORKSPACE_ROOT/$name"
    start_in_ws "$name" "$TMP/log/stress-$name.log" "$PY" -u "$HERE/wsserver.py" 0.0.0.0 "$STRESS_PORT"
    pids+=("$LAST_PID")
  done
  for i in "${!names[@]}"; do
    out=$(wait_listening "$TMP/log/stress-${names[$i]}.log" "${pids[$i]}" 60)
    if [ "$out" == "${addrs[$i]}:$STRESS_PORT" ]; then ok=$((ok + 1)); else bad+=" ${names[$i]}=$out"; fi
  done
  expect "stress: $STRESS_N servers on port $STRESS_PORT, each at its workspace's address${bad}" \
    "$ok" "$STRESS_N"

  ok=0
  bad=""
  for name in "${names[@]}"; do
    out=$(ws_curl "$name" "http://localhost:$STRESS_PORT/whoami")
    if [[ "$out" == "python $name "* ]]; then ok=$((ok + 1)); else bad+=" $name=${out:0:60}"; fi
  done
  expect "stress: each of $STRESS_N workspaces reaches its own server at localhost:$STRESS_PORT${bad}" \
    "$ok" "$STRESS_N"

  if [ -n "${PROXY_PID:-}" ] && kill -0 "$PROXY_PID" 2>/dev/null; then
    out=$("$PY" "$HERE/stress.py" "$P_PROXY" "$STRESS_PORT" "$STRESS_CONC" "$STRESS_REQUESTS" 90 "${names[@]}")
    local rc=$?
    echo "$out" | grep '^  sample' || true
    expect "stress: $STRESS_REQUESTS requests, $STRESS_CONC parallel clients through the proxy, all from the right workspace ($(echo "$out" | tail -n1))" \
      "$rc" "0"
  else
    fail "stress through the proxy not run: proxy not running"
  fi
  for i in "${pids[@]}"; do stop_pid "$i"; done
}

# ---- 7. gRPC and h2c through the proxy -----------------------------------------------------
# e2e/grpc_e2e.py starts its own proxies and servers (grpcio, and node's http2 when present):
# every RPC kind by headers and by the .localhost authority in two workspaces on one port,
# trailers, cancellation, deadlines, 5 MiB messages, pooled upstream h2c, gRPC error statuses.
step_grpc() {
  if [ ! -x "$PROXY_BIN" ]; then
    fail "grpc steps not run: no proxy binary at $PROXY_BIN"
    return
  fi
  if ! "$PY" -c 'import grpc' 2>/dev/null; then
    fail "grpc steps not run: python module grpcio missing (bash e2e/deps.sh installs it)"
    return
  fi
  local out rc n
  out=$(timeout -k 5 180 "$PY" "$HERE/grpc_e2e.py" "$PROXY_BIN" 2>&1)
  rc=$?
  echo "$out" | grep -E '^(PASS|FAIL|SKIP|  )'
  n=$(grep -c '^PASS' <<<"$out")
  PASSED=$((PASSED + n))
  n=$(grep -c '^SKIP' <<<"$out")
  SKIPPED=$((SKIPPED + n))
  n=$(grep -c '^FAIL' <<<"$out")
  FAILED=$((FAILED + n))
  if [ $rc -ne 0 ] && [ "$n" -eq 0 ]; then
    fail "grpc: e2e/grpc_e2e.py exited $rc: $(tail -c 300 <<<"$out" | tr '\n' ' ')"
  fi
}

step_proxy_alive() {
  [ -n "${PROXY_PID:-}" ] || return 0
  if kill -0 "$PROXY_PID" 2>/dev/null; then pass "proxy still running after the suite"; else
    fail "proxy died: $(tail -c 300 "$TMP/log/proxy.log")"
  fi
}

echo "e2e: root $CMUX_WORKSPACE_ROOT, shim $SHIM, proxy $PROXY_BIN"
step_prerequisites
step_servers
step_isolation
step_addr_in_use
step_proxy
step_redis
step_stress
step_grpc
step_proxy_alive
finish
