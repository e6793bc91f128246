#!/usr/bin/env bash
# cmux-proxy benchmark (issues 5 and 20), side by side in one run with the same header
# routing: direct (no proxy), nginx, HAProxy, bare pingora (bench/pingora-bare: pingora's own
# limit, the reference every figure is divided by), cmux-proxy, Caddy, Node http-proxy and
# Go's httputil.ReverseProxy. Run by `make bench` as `bash bench/run.sh`. Loopback only;
# every process it starts is recorded by pid and ended on exit. See bench/README.md for the
# workloads and the knobs.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

# ---------------------------------------------------------------------------- knobs
QUICK=${BENCH_QUICK:-0}
# The full run's defaults keep it within about 15 minutes with all eight targets on the
# 2-core machine: 3 rounds of 5 s, the 1 GiB file twice per kind and round, one idle round.
if [ "$QUICK" = 1 ]; then
  SECS=${BENCH_SECONDS:-1}; ROUNDS=${BENCH_ROUNDS:-1}; LARGE_MB=${BENCH_LARGE_MB:-64}
  LARGE_REPS=${BENCH_LARGE_REPS:-1}; CONNECT_MB=${BENCH_CONNECT_MB:-128}
  IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}; SCALE_SECS=${BENCH_SCALE_SECS:-2}
  OUT=${BENCH_OUT:-bench/results-quick.md}
else
  SECS=${BENCH_SECONDS:-5}; ROUNDS=${BENCH_ROUNDS:-3}; LARGE_MB=${BENCH_LARGE_MB:-1024}
  LARGE_REPS=${BENCH_LARGE_REPS:-2}; CONNECT_MB=${BENCH_CONNECT_MB:-1024}
  IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}; SCALE_SECS=${BENCH_SCALE_SECS:-10}
  OUT=${BENCH_OUT:-bench/results.md}
fi
# The chart and the performance table's block (in docs/performance.md) come from the same
# run as $OUT: the SVG beside it; that block is rewritten only by a full run into
# bench/results.md (BENCH_README=0: never).
SVG=${BENCH_SVG:-${OUT%.md}.svg}
README_UPDATE=${BENCH_README:-$([ "$OUT" = bench/results.md ] && echo 1 || echo 0)}
SCALE_RATE=${BENCH_SCALE_RATE:-1000}   # fixed request rate of the scale run (req/s)
SCALE_CONNS=${BENCH_SCALE_CONNS:-20}   # keep-alive connections that carry it
THREADS=${BENCH_THREADS:-1}            # worker threads (processes) of every proxy, see start_*
TARGETS=${BENCH_TARGETS:-"direct nginx haproxy pingora cmux caddy node go"}
WORKLOADS=${BENCH_WORKLOADS:-"mem small large ws connect h2c"}
PIN=${BENCH_PIN:-1}
LOAD_CPUS=${BENCH_LOAD_CPUS:-0}        # wrk, curl, loadgen clients
SERVER_CPUS=${BENCH_SERVER_CPUS:-1}    # upstream nginx, WebSocket echo, TCP sink
PROXY_CPUS=${BENCH_PROXY_CPUS:-1}      # the proxy under test
WRK_CONNS=${BENCH_WRK_CONNS:-50}
WS_CONNS=${BENCH_WS_CONNS:-10}
WS_SIZE=${BENCH_WS_SIZE:-32}
CMUX_BIN=${BENCH_CMUX_BIN:-target/release/cmux-proxy}
# A second cmux-proxy binary for an A/B comparison in one run: adds the target `cmuxb`.
CMUXB_BIN=${BENCH_CMUXB_BIN:-}
H2C_CONNS=${BENCH_H2C_CONNS:-10}       # h2load client connections (h2c workload)
H2C_STREAMS=${BENCH_H2C_STREAMS:-10}   # concurrent streams per connection
PINGORA_BIN=${BENCH_PINGORA_BIN:-target/release/pingora-bare}
GO_BUILD_TIMEOUT=${BENCH_GO_BUILD_TIMEOUT:-180}  # seconds; past it the Go target is skipped
CMUX_YAML_EXTRA=${BENCH_CMUX_YAML_EXTRA:-}  # extra lines for cmux-proxy's YAML (experiments): indented, they go under `cmux_proxy:`
CMUX_ACCESS_LOG=${BENCH_CMUX_ACCESS_LOG:-off}  # "stderr" to measure the access log's cost
NO_BUILD=${BENCH_NO_BUILD:-0}
NGINX_BUFFERING=${BENCH_NGINX_BUFFERING:-on}
# Measured best for the large response (bench/README.md): buffering on, but in memory only.
NGINX_PROXY_EXTRA=${BENCH_NGINX_PROXY_EXTRA-proxy_max_temp_file_size 0; proxy_buffers 16 64k; proxy_busy_buffers_size 128k;}
SCALE=${BENCH_SCALE:-1}                # 0: the mem workload measures memory only
PROFILE=${BENCH_PROFILE:-}             # small|ws|large|connect: perf-profile cmux-proxy only
LOADGEN=target/release/cmux-loadgen

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------- install
[ -n "$CMUXB_BIN" ] && [[ " $TARGETS " != *" cmuxb "* ]] && TARGETS="$TARGETS cmuxb"
has_target() { [[ " $TARGETS " == *" $1 "* ]]; }
has_workload() { [[ " $WORKLOADS " == *" $1 "* ]]; }
drop_target() { # drop_target NAME WHY: the run goes on without it
  log "skipping target $1: $2"
  TARGETS=$(tr ' ' '\n' <<<"$TARGETS" | grep -vx "$1" | tr '\n' ' ' | sed 's/ *$//')
}

install_missing() {
  local need=()
  command -v wrk >/dev/null || need+=(wrk)
  # Debian's packages for the dev-environment proxies: Caddy 2.6, Go 1.19 (for
  # bench/go-proxy), Node with npm (bench/node-proxy's http-proxy comes from npm).
  if has_target caddy && ! command -v caddy >/dev/null; then need+=(caddy); fi
  if has_target go && ! command -v go >/dev/null; then need+=(golang-go); fi
  if has_target node && ! command -v node >/dev/null; then need+=(nodejs); fi
  if has_target node && ! command -v npm >/dev/null; then need+=(npm); fi
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
  [ -x /usr/sbin/haproxy ] || command -v haproxy >/dev/null || need+=(haproxy)
  command -v curl >/dev/null || need+=(curl)
  command -v taskset >/dev/null || need+=(util-linux)
  if has_workload h2c && ! command -v h2load >/dev/null; then need+=(nghttp2-client); fi
  if [ -n "$PROFILE" ] && ! command -v perf >/dev/null; then need+=(linux-perf); fi
  [ ${#need[@]} -eq 0 ] && return 0
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # apt-get update only when the install fails without it (fresh machine, stale lists).
  if ! apt-get install -y -q "${need[@]}" >/dev/null 2>&1; then
    apt-get update -q >/dev/null
    if ! apt-get install -y -q "${need[@]}" >/dev/null; then
      # nginx-light is gone from newer Debian releases; plain nginx does as well.
      need=("${need[@]/nginx-light/nginx}")
      apt-get install -y -q "${need[@]}" >/dev/null
    fi
  fi
}
install_missing || log "warning: some packages did not install; targets without them are skipped"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)

# ---------------------------------------------------------------------------- build
# One cargo invocation for the three, so that the features of their shared dependencies
# (pingora's among them) are unified exactly alike for cmux-proxy and bare pingora.
if [ "$NO_BUILD" != 1 ]; then
  log "cargo build --release -p cmux-proxy -p cmux-loadgen -p pingora-bare"
  cargo build --release -q -p cmux-proxy -p cmux-loadgen -p pingora-bare
fi
[ -x "$LOADGEN" ] || die "$LOADGEN missing (build it: cargo build --release -p cmux-loadgen)"
if has_target cmux; then [ -x "$CMUX_BIN" ] || die "$CMUX_BIN missing"; fi
if has_target cmuxb; then [ -x "$CMUXB_BIN" ] || die "$CMUXB_BIN (BENCH_CMUXB_BIN) missing"; fi
if has_workload h2c && ! command -v h2load >/dev/null; then
  log "skipping workload h2c: h2load (Debian's nghttp2-client) is missing"
  WORKLOADS=$(tr ' ' '\n' <<<"$WORKLOADS" | grep -vx h2c | tr '\n' ' ' | sed 's/ *$//')
fi
if has_target pingora; then [ -x "$PINGORA_BIN" ] || die "$PINGORA_BIN missing"; fi

# ---------------------------------------------------------------------------- processes
TMP=$(mktemp -d /tmp/cmux-bench.XXXXXX)
PIDS=()
cleanup() {
  local pid _ alive
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 50); do
    alive=0
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "${BENCH_KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The Node and Go targets: prepared here, skipped (with a line saying why) if they cannot be.
if has_target node; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    drop_target node "node or npm missing"
  elif [ ! -d bench/node-proxy/node_modules/http-proxy ] &&
    ! (cd bench/node-proxy && timeout 180 npm ci --no-audit --no-fund --silent >"$TMP/npm.log" 2>&1); then
    drop_target node "npm ci failed: $(tail -2 "$TMP/npm.log" | tr '\n' ' ')"
  fi
fi
GO_BIN=$TMP/go-proxy
if has_target go; then
  if ! command -v go >/dev/null; then
    drop_target go "go missing (Debian: golang-go)"
  else
    # Standard library only, so the build needs no network: GOPROXY=off, no toolchain
    # download, the cache in the temp dir unless GOCACHE says otherwise.
    log "go build bench/go-proxy (at most $GO_BUILD_TIMEOUT s)"
    if ! (cd bench/go-proxy && GOPROXY=off GOTOOLCHAIN=local GOFLAGS=-mod=mod \
      GOCACHE=${GOCACHE:-$TMP/go-cache} timeout "$GO_BUILD_TIMEOUT" go build -o "$GO_BIN" . \
      >"$TMP/go-build.log" 2>&1); then
      drop_target go "go build failed or took over $GO_BUILD_TIMEOUT s: $(tail -2 "$TMP/go-build.log" | tr '\n' ' ')"
    fi
  fi
fi
if has_target caddy && ! command -v caddy >/dev/null; then drop_target caddy "caddy missing"; fi

pin() { # pin CPUS CMD...
  local cpus=$1; shift
  if [ "$PIN" = 1 ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

LAST_PID=
start() { # start NAME CPUS CMD...: in the background, logged to $TMP/NAME.log, pid recorded
  local name=$1 cpus=$2; shift 2
  # A plain command (not a shell function) in the background: bash forks once and execs it
  # (taskset execs in turn), so $! is the program's own pid, the one we measure and kill.
  if [ "$PIN" = 1 ]; then
    taskset -c "$cpus" "$@" >"$TMP/$name.log" 2>&1 &
  else
    "$@" >"$TMP/$name.log" 2>&1 &
  fi
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_pid() { # stop PID: TERM, wait (bounded), KILL
  local pid=$1 _
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

wait_port() { # wait_port PORT NAME: until something accepts on 127.0.0.1:PORT (10 s at most)
  local _
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$2 did not listen on 127.0.0.1:$1; its log:"; tail -20 "$TMP/$2.log" >&2 || true
  return 1
}

children_of() { # pids of a master's children (nginx workers), waiting up to 5 s for them
  local _
  for _ in $(seq 50); do pgrep -P "$1" && return 0; sleep 0.1; done
  return 0
}

cpu_ticks() { # sum of utime+stime (clock ticks) of the given pids (all their threads)
  local pid sum=0 t
  for pid in "$@"; do
    t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
    sum=$((sum + ${t:-0}))
  done
  echo "$sum"
}

rss_kib() { # sum of VmRSS (KiB) of the given pids
  local pid sum=0 r
  for pid in "$@"; do
    r=$(awk '/^VmRSS:/{print $2}' "/proc/$pid/status" 2>/dev/null) || r=0
    sum=$((sum + ${r:-0}))
  done
  echo "$sum"
}

HZ=$(getconf CLK_TCK)
RAW=$TMP/raw.tsv
: >"$RAW"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }  # metric target round value

# File descriptors: every proxied idle WebSocket costs the proxy two. The hard limit is what
# we may raise to; above it the idle-connection count is capped (and the cap is reported).
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
ulimit -n "$NOFILE"
MAX_IDLE=$(((NOFILE - 256) / 2))
if [ "$IDLE_CONNS" -gt "$MAX_IDLE" ]; then
  log "open-file hard limit is $NOFILE: idle WebSockets capped at $MAX_IDLE (asked $IDLE_CONNS)"
  IDLE_CONNS=$MAX_IDLE
fi
MAXCONN=$((IDLE_CONNS + 200))
# HAProxy asks for 2 descriptors per maxconn (plus a few) and refuses to start above the limit.
[ "$MAXCONN" -gt $(((NOFILE - 64) / 2)) ] && MAXCONN=$(((NOFILE - 64) / 2))

read -r UP WS SINK P_NGINX P_HAPROXY P_CMUX P_PINGORA P_CADDY P_NODE P_GO H2C P_CMUXB <<<"$("$LOADGEN" free-ports 12)"
log "ports: upstream $UP (h2c $H2C), ws-echo $WS, tcp-sink $SINK, nginx $P_NGINX, haproxy $P_HAPROXY, cmux $P_CMUX, pingora $P_PINGORA, caddy $P_CADDY, node $P_NODE, go $P_GO, cmuxb $P_CMUXB"

# ---------------------------------------------------------------------------- upstream
SMALL_BODY="cmux-proxy benchmark upstream: a small response body of 64 bytes.."
mkdir -p "$TMP/www"
: >"$TMP/www/empty"
LARGE=$TMP/www/large.bin
fallocate -l "${LARGE_MB}MiB" "$LARGE" 2>/dev/null || dd if=/dev/zero of="$LARGE" bs=1M count="$LARGE_MB" status=none
LARGE_BYTES=$(stat -c %s "$LARGE")
cat "$LARGE" >/dev/null   # into the page cache before anything is timed

nginx_common() { # the part of both nginx configs that only places files in $TMP
  cat <<EOF
daemon off;
master_process on;
user root;
worker_rlimit_nofile $NOFILE;
error_log $TMP/$1-error.log warn;
pid $TMP/$1.pid;
EOF
}
nginx_temp_paths() {
  local d
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $TMP/$1-$d;"; done
}

cat >"$TMP/upstream.conf" <<EOF
$(nginx_common upstream)
worker_processes 1;
events { worker_connections $((NOFILE / 2)); }
http {
$(nginx_temp_paths upstream)
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
  server {
    listen 127.0.0.1:$UP backlog=4096;
    location = /small { default_type text/plain; return 200 "$SMALL_BODY"; }
    location = /large { alias $LARGE; default_type application/octet-stream; }
    # The addition filter drops Content-Length, so the same file goes out chunked.
    location = /chunked { alias $LARGE; default_type application/octet-stream; add_after_body /empty; }
    location = /empty { alias $TMP/www/empty; }
    location = /status { stub_status; }
  }
  # The h2c workload's target: the same small body over HTTP/2 in plaintext (prior
  # knowledge), as gRPC servers speak it.
  server {
    listen 127.0.0.1:$H2C http2 backlog=4096;
    location = /small { default_type text/plain; return 200 "$SMALL_BODY"; }
  }
}
EOF
start upstream "$SERVER_CPUS" "$NGINX" -c "$TMP/upstream.conf"
UP_MASTER=$LAST_PID
start ws-echo "$SERVER_CPUS" "$LOADGEN" ws-echo-server --listen "127.0.0.1:$WS"
start tcp-sink "$SERVER_CPUS" "$LOADGEN" tcp-sink-server --listen "127.0.0.1:$SINK"
wait_port "$UP" upstream
wait_port "$WS" ws-echo
wait_port "$SINK" tcp-sink
read -r -a UP_WORKERS <<<"$(children_of "$UP_MASTER" | tr '\n' ' ')"
UP_PIDS=("$UP_MASTER" "${UP_WORKERS[@]}")
PIDS+=("${UP_PIDS[@]:1}")

accepts() { # the upstream's accepted-connections counter (this query's own connection included)
  curl -s --max-time 5 "http://127.0.0.1:$UP/status" | awk 'NR==3{print $1}'
}

# ---------------------------------------------------------------------------- proxies
declare -A PORT=([direct]=0 [nginx]=$P_NGINX [haproxy]=$P_HAPROXY [cmux]=$P_CMUX
  [pingora]=$P_PINGORA [caddy]=$P_CADDY [node]=$P_NODE [go]=$P_GO [cmuxb]=$P_CMUXB)
declare -A PPIDS=([direct]="")

start_nginx() {
  local ka=64
  cat >"$TMP/nginx.conf" <<EOF
$(nginx_common nginx)
worker_processes $THREADS;
# nginx starts closing connections that wait for a request once fewer than 1/16 of its
# connection slots are free, so allow 1/8 more slots than 2 per proxied connection.
events { worker_connections $(((2 * MAXCONN + 64) * 9 / 8)); }
http {
$(nginx_temp_paths nginx)
  access_log off;
  tcp_nodelay on;
  keepalive_requests 1000000000;
  keepalive_timeout 600s;
  # nginx at its best (bench notes): every known port maps to a named upstream with
  # keepalive; unknown ports fall back to the variable form (no upstream keepalive).
  map \$http_x_cmux_port_internal \$cmux_upstream {
    default 127.0.0.1:\$http_x_cmux_port_internal;
    $UP up_$UP;
    $WS up_$WS;
    $SINK up_$SINK;
  }
  map \$http_upgrade \$cmux_connection { default upgrade; "" ""; }
  upstream up_$UP { server 127.0.0.1:$UP; keepalive $ka; keepalive_requests 1000000000; keepalive_timeout 600s; }
  upstream up_$WS { server 127.0.0.1:$WS; keepalive $ka; keepalive_requests 1000000000; keepalive_timeout 600s; }
  upstream up_$SINK { server 127.0.0.1:$SINK; keepalive $ka; keepalive_requests 1000000000; keepalive_timeout 600s; }
  server {
    listen 127.0.0.1:$P_NGINX backlog=4096;
    location / {
      proxy_pass http://\$cmux_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection \$cmux_connection;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Cmux-Port-Internal "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$http_host;
      # Buffering on (in memory, no temp files) was nginx's best on the large response;
      # nginx still forwards each read as it arrives.
      proxy_buffering $NGINX_BUFFERING;
      $NGINX_PROXY_EXTRA
      proxy_request_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
EOF
  start nginx "$PROXY_CPUS" "$NGINX" -c "$TMP/nginx.conf"
  local master=$LAST_PID
  wait_port "$P_NGINX" nginx
  local workers
  read -r -a workers <<<"$(children_of "$master" | tr '\n' ' ')"
  PIDS+=("${workers[@]}")
  PPIDS[nginx]="$master ${workers[*]}"
}

start_haproxy() {
  cat >"$TMP/haproxy.cfg" <<EOF
global
  nbthread $THREADS
  maxconn $MAXCONN
  pidfile $TMP/haproxy.pid
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 3600s
  timeout server 3600s
  timeout tunnel 3600s
  timeout http-keep-alive 600s
  maxconn $MAXCONN
frontend fe
  bind 127.0.0.1:$P_HAPROXY
  option forwardfor
  http-request set-header X-Forwarded-Proto http if !{ req.hdr(x-forwarded-proto) -m found }
  http-request set-header X-Forwarded-Host %[req.hdr(host)] if !{ req.hdr(x-forwarded-host) -m found }
  # Fully dynamic header routing that still reuses upstream connections (bench notes).
  http-request set-dst-port req.hdr(x-cmux-port-internal)
  http-request del-header x-cmux-port-internal
  default_backend be
backend be
  http-reuse always
  server s 0.0.0.0:0
EOF
  start haproxy "$PROXY_CPUS" "$HAPROXY" -db -f "$TMP/haproxy.cfg"
  PPIDS[haproxy]=$LAST_PID
  wait_port "$P_HAPROXY" haproxy
}

start_cmux() { start_cmux_as cmux "$CMUX_BIN" "$P_CMUX"; }
start_cmuxb() { start_cmux_as cmuxb "$CMUXB_BIN" "$P_CMUXB"; }
start_cmux_as() { # start_cmux_as NAME BINARY PORT
  local name=$1 bin=$2 port=$3
  cat >"$TMP/$name.yaml" <<EOF
version: 1
threads: $THREADS
pid_file: $TMP/$name.pid
upgrade_sock: $TMP/$name-upgrade.sock
# As for bare pingora: stop at once on SIGTERM at the end.
grace_period_seconds: 0
graceful_shutdown_timeout_seconds: 1
cmux_proxy:
  # The other proxies here have no cap on client connections, and the memory workload
  # opens nearly as many idle WebSockets as the open-file limit allows, over the default
  # cap (a quarter of that limit).
  max_connections: 1000000
$CMUX_YAML_EXTRA
EOF
  # Same footing as nginx and HAProxy here: no access log; no admin listener (whose default
  # port could also clash with another instance on this machine).
  start "$name" "$PROXY_CPUS" env CMUX_ACCESS_LOG="$CMUX_ACCESS_LOG" CMUX_ADMIN_LISTEN=off \
    "$bin" -c "$TMP/$name.yaml" --listen "127.0.0.1:$port"
  PPIDS[$name]=$LAST_PID
  wait_port "$port" "$name"
}

# Bare pingora: the same pingora conf as cmux-proxy (threads, pid file, upgrade socket);
# its only hook routes on the port header (bench/pingora-bare/src/main.rs).
start_pingora() {
  cat >"$TMP/pingora.yaml" <<EOF
version: 1
threads: $THREADS
pid_file: $TMP/pingora.pid
upgrade_sock: $TMP/pingora-upgrade.sock
# Stop at once on SIGTERM at the end (pingora's defaults wait for open connections).
grace_period_seconds: 0
graceful_shutdown_timeout_seconds: 1
EOF
  start pingora "$PROXY_CPUS" "$PINGORA_BIN" --conf "$TMP/pingora.yaml" --listen "127.0.0.1:$P_PINGORA"
  PPIDS[pingora]=$LAST_PID
  wait_port "$P_PINGORA" pingora
}

# Caddy (Debian's 2.6, as in Gitpod's workspace ingress): reverse_proxy to a placeholder
# address, admin endpoint and automatic HTTPS off, no access log (Caddy's default). Caddy
# adds X-Forwarded-For/-Proto/-Host itself. Its default keeps 32 idle upstream connections
# per host, fewer than the 50 client connections of the small workload, so 64 here, as
# nginx's `keepalive 64`. GOMAXPROCS = the thread count of the others.
start_caddy() {
  cat >"$TMP/Caddyfile" <<EOF
{
  admin off
  auto_https off
  storage file_system $TMP/caddy-data
}
http://127.0.0.1:$P_CADDY {
  reverse_proxy 127.0.0.1:{http.request.header.X-Cmux-Port-Internal} {
    header_up -X-Cmux-Port-Internal
    transport http {
      keepalive 600s
      keepalive_idle_conns_per_host 64
    }
  }
}
EOF
  start caddy "$PROXY_CPUS" env GOMAXPROCS="$THREADS" HOME="$TMP" XDG_DATA_HOME="$TMP/caddy-data" \
    XDG_CONFIG_HOME="$TMP/caddy-config" caddy run --config "$TMP/Caddyfile" --adapter caddyfile
  PPIDS[caddy]=$LAST_PID
  wait_port "$P_CADDY" caddy
}

# Node http-proxy (bench/node-proxy/proxy.js): one process, keep-alive agent, proxy.ws for
# upgrades. Node runs JavaScript on one thread whatever BENCH_THREADS says.
start_node() {
  start node "$PROXY_CPUS" node bench/node-proxy/proxy.js --listen "127.0.0.1:$P_NODE"
  PPIDS[node]=$LAST_PID
  wait_port "$P_NODE" node
}

# Go httputil.ReverseProxy (bench/go-proxy), built above; GOMAXPROCS as for Caddy.
start_go() {
  start go "$PROXY_CPUS" env GOMAXPROCS="$THREADS" "$GO_BIN" --listen "127.0.0.1:$P_GO"
  PPIDS[go]=$LAST_PID
  wait_port "$P_GO" go
}

check_target() { # a small request through the target must come back 200 with the body
  local t=$1 port=${PORT[$1]} body
  [ "$t" = direct ] && port=$UP
  body=$(curl -s --max-time 5 -H "X-Cmux-Port-Internal: $UP" "http://127.0.0.1:$port/small") || true
  if [ "$body" != "$SMALL_BODY" ]; then
    log "$t does not proxy a small request (got: ${body:0:200})"
    [ -f "$TMP/$t.log" ] && tail -20 "$TMP/$t.log" >&2
    return 1
  fi
}

[ "$THREADS" -gt 1 ] && [[ "$PROXY_CPUS" != *[,-]* ]] && [ "$PIN" = 1 ] &&
  log "warning: BENCH_THREADS=$THREADS but proxies pinned to one CPU ($PROXY_CPUS); set BENCH_PROXY_CPUS"

for t in $TARGETS; do
  case $t in
    direct) ;;
    nginx) start_nginx ;;
    haproxy) start_haproxy ;;
    cmux) start_cmux ;;
    cmuxb) start_cmuxb ;;
    pingora) start_pingora ;;
    caddy) start_caddy ;;
    node) start_node ;;
    go) start_go ;;
    *) die "unknown target $t (direct nginx haproxy pingora cmux caddy node go cmuxb)" ;;
  esac
  check_target "$t" || die "$t is not working"
done
log "targets up: $TARGETS"

addr_of() { if [ "$1" = direct ]; then echo "127.0.0.1:$2"; else echo "127.0.0.1:${PORT[$1]}"; fi; }

# ---------------------------------------------------------------------------- workloads
# Fixed-rate small requests (cmux-loadgen http-rate): records METRIC_p50/p99 for TARGET.
rate_run() { # rate_run TARGET ROUND SUFFIX
  local t=$1 r=$2 suffix=$3 out
  out=$(pin "$LOAD_CPUS" timeout $((SCALE_SECS + 40)) "$LOADGEN" http-rate --addr "$(addr_of "$t" "$UP")" \
    --port "$UP" --path /small --rate "$SCALE_RATE" --secs "$SCALE_SECS" --conns "$SCALE_CONNS" 2>&1) ||
    { log "scale $t ($suffix): $out"; return 1; }
  kv() { tr ' ' '\n' <<<"$out" | awk -F= -v k="$1" '$1 == k {print $2}'; }
  [ "$(kv errors)" = 0 ] || log "scale $t ($suffix): $(kv errors) failed requests"
  record "scale.p50_${suffix}_us" "$t" "$r" "$(kv p50_us)"
  record "scale.p99_${suffix}_us" "$t" "$r" "$(kv p99_us)"
  RATE_P99=$(kv p99_us)
  log "scale $t ($suffix): $(kv rate) req/s, p50 $(kv p50_us) µs, p99 $(kv p99_us) µs"
}

# Memory per idle WebSocket and the scale run, on a freshly started proxy: RSS idle; small
# requests at a fixed rate; IDLE_CONNS idle WebSockets opened (RSS again); the same fixed
# rate with them open; the idle WebSockets closed.
mem_workload() { # mem TARGET ROUND
  local t=$1 r=$2 idle loaded lg ready=$TMP/ready.$1.$2 base_p99=
  [ "$t" = direct ] && return 0
  # shellcheck disable=SC2086
  idle=$(rss_kib ${PPIDS[$t]})
  if [ "$SCALE" = 1 ] && rate_run "$t" "$r" base; then base_p99=$RATE_P99; fi
  start "idle-$t" "$LOAD_CPUS" "$LOADGEN" idle-ws --addr "$(addr_of "$t" "$WS")" --port "$WS" \
    --conns "$IDLE_CONNS" --concurrency 64 --hold 600 --ready-file "$ready"
  lg=$LAST_PID
  for _ in $(seq 1800); do
    [ -s "$ready" ] && break
    kill -0 "$lg" 2>/dev/null || break
    sleep 0.1
  done
  if [ ! -s "$ready" ]; then
    log "mem $t: idle connections did not open: $(tail -3 "$TMP/idle-$t.log")"
    stop_pid "$lg"; return 0
  fi
  sleep 2  # let the proxy settle (lazy allocations, pool trims)
  # shellcheck disable=SC2086
  loaded=$(rss_kib ${PPIDS[$t]})
  record mem.idle_kib "$t" "$r" "$idle"
  record mem.loaded_kib "$t" "$r" "$loaded"
  record mem.per_conn_kib "$t" "$r" "$(awk -v a="$idle" -v b="$loaded" -v n="$IDLE_CONNS" 'BEGIN{printf "%.3f", (b-a)/n}')"
  log "mem $t: idle ${idle} KiB, with $IDLE_CONNS WebSockets ${loaded} KiB"
  if [ "$SCALE" = 1 ] && rate_run "$t" "$r" idle; then
    # shellcheck disable=SC2086
    record scale.rss_kib "$t" "$r" "$(rss_kib ${PPIDS[$t]})"
    [ -n "$base_p99" ] && record scale.p99_ratio "$t" "$r" \
      "$(awk -v a="$RATE_P99" -v b="$base_p99" 'BEGIN{if (b > 0) printf "%.3f", a/b}')"
  fi
  stop_pid "$lg"
  sleep 2  # let the closes drain before the next target
}

wrk_latency_us() { # wrk_latency_us PCT < wrk output
  awk -v p="$1" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0
    printf "%.1f", v * m }'
}

small_workload() { # small TARGET ROUND [warmup-seconds]
  local t=$1 r=$2 d=${3:-$SECS} port out a0 a1 c0 c1 u0 u1 reqs
  port=${PORT[$t]}; [ "$t" = direct ] && port=$UP
  a0=$(accepts)
  # shellcheck disable=SC2086
  c0=$(cpu_ticks ${PPIDS[$t]}); u0=$(cpu_ticks "${UP_PIDS[@]}")
  out=$(pin "$LOAD_CPUS" timeout $((d + 30)) wrk -t1 -c"$WRK_CONNS" -d"${d}s" --latency \
    -H "X-Cmux-Port-Internal: $UP" "http://127.0.0.1:$port/small") || { log "wrk failed on $t"; return 0; }
  # shellcheck disable=SC2086
  c1=$(cpu_ticks ${PPIDS[$t]}); u1=$(cpu_ticks "${UP_PIDS[@]}")
  a1=$(accepts)
  [ "$r" = warmup ] && return 0
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    log "small $t: errors: $(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ';')"
  fi
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  [ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { log "small $t: no requests"; return 0; }
  record small.rps "$t" "$r" "$(awk '/^Requests\/sec/{print $2}' <<<"$out")"
  record small.p50_us "$t" "$r" "$(wrk_latency_us 50% <<<"$out")"
  record small.p99_us "$t" "$r" "$(wrk_latency_us 99% <<<"$out")"
  # New connections the upstream accepted, less the status query's own.
  record small.upconns_per_1k "$t" "$r" "$(awk -v a="$a0" -v b="$a1" -v n="$reqs" 'BEGIN{printf "%.3f", (b-a-1)*1000/n}')"
  [ "$t" != direct ] && record small.proxy_cpu_us "$t" "$r" \
    "$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.2f", c*1e6/hz/n}')"
  record small.upstream_cpu_us "$t" "$r" \
    "$(awk -v c="$((u1 - u0))" -v hz="$HZ" -v n="$reqs" 'BEGIN{printf "%.2f", c*1e6/hz/n}')"
  log "small $t round $r: $(awk '/^Requests\/sec/{print $2}' <<<"$out") req/s"
}

large_workload() { # large TARGET ROUND: Content-Length and chunked, LARGE_REPS curls each
  local t=$1 r=$2 port kind path out speed size code
  port=${PORT[$t]}; [ "$t" = direct ] && port=$UP
  for kind in cl chunked; do
    path=/large; [ $kind = chunked ] && path=/chunked
    for _ in $(seq "$LARGE_REPS"); do
      out=$(pin "$LOAD_CPUS" curl -s --max-time 120 -o /dev/null -w '%{speed_download} %{size_download} %{http_code}' \
        -H "X-Cmux-Port-Internal: $UP" "http://127.0.0.1:$port$path") || true
      read -r speed size code <<<"$out"
      if [ "${code:-}" != 200 ] || [ "${size:-0}" != "$LARGE_BYTES" ]; then
        log "large $kind $t: HTTP ${code:-?}, ${size:-0} of $LARGE_BYTES bytes"; continue
      fi
      record "large_$kind.mbps" "$t" "$r" "$(awk -v s="$speed" 'BEGIN{printf "%.1f", s/1e6}')"
    done
  done
}

ws_workload() { # ws TARGET ROUND
  local t=$1 r=$2 out c0 c1 msgs
  # shellcheck disable=SC2086
  c0=$(cpu_ticks ${PPIDS[$t]})
  out=$(pin "$LOAD_CPUS" timeout $((SECS + 30)) "$LOADGEN" ws-pingpong --addr "$(addr_of "$t" "$WS")" \
    --port "$WS" --conns "$WS_CONNS" --size "$WS_SIZE" --secs "$SECS" 2>&1) || { log "ws $t: $out"; return 0; }
  # shellcheck disable=SC2086
  c1=$(cpu_ticks ${PPIDS[$t]})
  kv() { tr ' ' '\n' <<<"$out" | awk -F= -v k="$1" '$1 == k {print $2}'; }
  msgs=$(kv msgs)
  record ws.rate "$t" "$r" "$(kv rate)"
  record ws.p50_us "$t" "$r" "$(kv p50_us)"
  record ws.p99_us "$t" "$r" "$(kv p99_us)"
  [ "$t" != direct ] && [ "${msgs:-0}" -gt 0 ] && record ws.proxy_cpu_us "$t" "$r" \
    "$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$msgs" 'BEGIN{printf "%.2f", c*1e6/hz/n}')"
  log "ws $t round $r: $(kv rate) msgs/s"
}

connect_workload() { # connect TARGET ROUND (direct and cmux only: nginx/HAProxy have no CONNECT)
  local t=$1 r=$2 out c0 c1 args mbps
  case $t in
    direct) args=(--addr "127.0.0.1:$SINK") ;;
    cmux | cmuxb) args=(--addr "127.0.0.1:${PORT[$t]}" --connect-port "$SINK") ;;
    *) return 0 ;;
  esac
  # shellcheck disable=SC2086
  c0=$(cpu_ticks ${PPIDS[$t]})
  out=$(pin "$LOAD_CPUS" timeout 120 "$LOADGEN" connect-bulk "${args[@]}" --bytes $((CONNECT_MB << 20)) 2>&1) ||
    { log "connect $t: $out"; return 0; }
  # shellcheck disable=SC2086
  c1=$(cpu_ticks ${PPIDS[$t]})
  mbps=$(tr ' ' '\n' <<<"$out" | awk -F= '$1 == "mbps" {print $2}')
  record connect.mbps "$t" "$r" "$mbps"
  [ "$t" != direct ] && record connect.proxy_cpu_us_per_mb "$t" "$r" \
    "$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v mb="$((CONNECT_MB << 20))" 'BEGIN{printf "%.1f", c*1e6/hz/(mb/1e6)}')"
  log "connect $t round $r: $mbps MB/s"
}

h2c_workload() { # h2c TARGET ROUND: small requests over h2c with h2load (direct and cmux-proxy)
  local t=$1 r=$2 port out rps ok failed c0 c1
  case $t in
    direct) port=$H2C ;;
    cmux | cmuxb) port=${PORT[$t]} ;;
    *) return 0 ;;
  esac
  # shellcheck disable=SC2086
  c0=$(cpu_ticks ${PPIDS[$t]:-})
  # The steering headers route to the h2c server and ask for h2c to it (nginx ignores them).
  out=$(pin "$LOAD_CPUS" timeout $((SECS + 30)) h2load -D "$SECS" -t 1 -c "$H2C_CONNS" \
    -m "$H2C_STREAMS" -H "x-cmux-port-internal: $H2C" -H "x-cmux-upstream-protocol: h2c" \
    "http://127.0.0.1:$port/small" 2>&1) || { log "h2load failed on $t: $(tail -3 <<<"$out")"; return 0; }
  # shellcheck disable=SC2086
  c1=$(cpu_ticks ${PPIDS[$t]:-})
  [ "$r" = warmup ] && return 0
  rps=$(awk '/^finished in/{print $4}' <<<"$out")
  ok=$(awk '/^status codes:/{print $3}' <<<"$out")
  failed=$(awk '/^requests:/{for (i = 1; i < NF; i++) if ($(i + 1) ~ /^(failed|errored),?$/) s += $i} END{print s + 0}' <<<"$out")
  [ "${ok:-0}" -gt 0 ] || { log "h2c $t: no 2xx answer: $(grep -E '^(requests|status codes):' <<<"$out" | tr '\n' ' ')"; return 0; }
  [ "$failed" -gt 0 ] && log "h2c $t: $failed requests failed or errored"
  record h2c.rps "$t" "$r" "$rps"
  [ "$t" != direct ] && record h2c.proxy_cpu_us "$t" "$r" \
    "$(awk -v c="$((c1 - c0))" -v hz="$HZ" -v n="$ok" 'BEGIN{printf "%.2f", c*1e6/hz/n}')"
  log "h2c $t round $r: $rps req/s"
}

# ---------------------------------------------------------------------------- profile mode
if [ -n "$PROFILE" ]; then
  [[ " $TARGETS " == *" cmux "* ]] || die "BENCH_PROFILE needs the cmux target"
  command -v perf >/dev/null || die "perf is missing (apt-get install linux-perf)"
  small_workload cmux warmup 1
  perf record -F "${BENCH_PERF_FREQ:-1999}" ${BENCH_PERF_CALLGRAPH:+--call-graph "$BENCH_PERF_CALLGRAPH"} \
    -o "$TMP/perf.data" -p "${PPIDS[cmux]}" >"$TMP/perf.log" 2>&1 &
  PERF=$!; PIDS+=("$PERF")
  sleep 0.5
  "${PROFILE}_workload" cmux 1
  kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
  report=bench/profile-$PROFILE.txt
  perf report -i "$TMP/perf.data" --stdio --no-children --percent-limit 0.5 \
    --sort dso,symbol 2>/dev/null | sed -e "s/ *- *- *$//" -e "s/ *$//" >"$report" || true
  "$LOADGEN" summarize --raw "$RAW"
  log "profile of cmux-proxy during '$PROFILE' written to $report"
  head -60 "$report"
  exit 0
fi

# ---------------------------------------------------------------------------- rounds
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# Anything else running on this 2-core machine skews every figure; say so up front.
awk -v l="${LOAD_START%% *}" 'BEGIN{exit !(l > 0.7)}' &&
  log "warning: load average $LOAD_START before the run: other processes are busy; figures will be noisy"
T0=$(date +%s)
for w in $WORKLOADS; do
  case $w in mem | small | large | ws | connect | h2c) ;; *) die "unknown workload $w" ;; esac
  rounds=$ROUNDS
  [ "$w" = mem ] && rounds=${BENCH_MEM_ROUNDS:-1}  # RSS barely varies; one round is enough
  if [ "$w" = small ] || [ "$w" = h2c ]; then
    for t in $TARGETS; do "${w}_workload" "$t" warmup 1; done  # fill the upstream pools
  fi
  log "workload $w: $rounds round(s) over: $TARGETS"
  for r in $(seq "$rounds"); do
    for t in $TARGETS; do "${w}_workload" "$t" "$r"; done
  done
done
ELAPSED=$(($(date +%s) - T0))

# ---------------------------------------------------------------------------- report
META=$TMP/meta.tsv
{
  printf 'machine\t%s, %s CPUs (%s), %s GiB RAM, %s\n' "$(uname -sr)" "$(nproc)" \
    "$(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo)" \
    "$(awk '/MemTotal/{printf "%.0f", $2/1048576}' /proc/meminfo)" \
    "$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
  printf 'date\t%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
  printf 'settings\t%s round(s) of %s s per target, alternating; threads %s (nginx workers, HAProxy nbthread, pingora threads, GOMAXPROCS; Node: 1); ' \
    "$ROUNDS" "$SECS" "$THREADS"
  if [ "$PIN" = 1 ]; then
    printf 'pinned: load on CPU %s, upstream servers on %s, proxy on %s\n' "$LOAD_CPUS" "$SERVER_CPUS" "$PROXY_CPUS"
  else
    printf 'not pinned\n'
  fi
  printf 'workloads\t1: wrk -t1 -c%s, %s-byte body; 2: %s MiB file, %s curl(s) per kind and round; 3: %s connections, %s-byte messages; 4: %s MiB upload through one tunnel; 5: %s idle WebSockets; 6: %s req/s for %s s on %s connections, without and with the idle WebSockets\n' \
    "$WRK_CONNS" "${#SMALL_BODY}" "$LARGE_MB" "$LARGE_REPS" "$WS_CONNS" "$WS_SIZE" "$CONNECT_MB" "$IDLE_CONNS" \
    "$SCALE_RATE" "$SCALE_SECS" "$SCALE_CONNS"
  printf 'versions\t%s; %s; %s; cmux-proxy and bare pingora %s (pingora %s)' "$("$NGINX" -v 2>&1 | sed 's/.*: //')" \
    "$("$HAPROXY" -v | head -1 | awk '{print "HAProxy " $3}')" "$(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')" \
    "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '(no commit)')$(git -C "$ROOT" diff --quiet HEAD -- src bench/pingora-bare 2>/dev/null || echo ' + local changes')" \
    "$(awk '/^name = "pingora"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
  if has_target caddy; then printf '; Caddy %s' "$(caddy version | awk '{print $1}')"; fi
  if has_target node; then
    printf '; Node %s with http-proxy %s' "$(node -v)" \
      "$(node -p 'require("./bench/node-proxy/node_modules/http-proxy/package.json").version')"
  fi
  if has_target go; then printf '; %s' "$(go version | awk '{print $3}')"; fi
  echo
  printf 'duration\t%s s of measurement; load average %s before, %s after\n' "$ELAPSED" "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)"
} >"$META"
echo
"$LOADGEN" summarize --raw "$RAW" --meta "$META" --markdown "$OUT" --svg "$SVG" \
  --readme "$TMP/readme-block.md"
echo
log "results written to $OUT, chart to $SVG"

# The h2c workload's figure: cmux-proxy against the same h2c server without a proxy.
h2c_ratio() {
  awk -F'\t' '$1 == "h2c.rps" {v[$2] = v[$2] " " $4}
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) {t = a[i]; a[i] = a[j]; a[j] = t}
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      if (!("direct" in v)) exit
      d = median(v["direct"])
      for (t in v) if (t != "direct" && d > 0)
        printf "h2c small requests (h2load, %s connections x %s streams): %s %.0f req/s, direct %.0f req/s: %.3fx direct\n", c, m, t, median(v[t]), d, median(v[t]) / d
    }' c="$H2C_CONNS" m="$H2C_STREAMS" "$RAW"
}
if has_workload h2c && [ -n "$(h2c_ratio)" ]; then
  h2c_ratio | while read -r line; do log "$line"; done
  { echo; echo "## h2c"; echo; h2c_ratio | sed 's/^/- /'; } >>"$OUT"
fi

# The table and target check of docs/performance.md: the lines between the two markers are
# replaced by this run's block (written by summarize above).
if [ "$README_UPDATE" = 1 ]; then
  begin='<!-- bench-results:begin -->' end='<!-- bench-results:end -->'
  doc=docs/performance.md
  if grep -qF "$begin" "$doc" && grep -qF "$end" "$doc"; then
    awk -v b="$begin" -v e="$end" -v f="$TMP/readme-block.md" -v head="$(awk -F'\t' '
        $1 == "date" {d = $2} $1 == "duration" {l = $2}
        END {print "From the run of " d " (" l ")."}' "$META")" '
      $0 == b {print; print ""; print head; print ""; while ((getline line < f) > 0) print line; print ""; skip = 1; next}
      $0 == e {skip = 0}
      !skip {print}' "$doc" >"$TMP/performance.md"
    cat "$TMP/performance.md" >"$doc"
    log "$doc: performance table replaced by this run's"
  else
    log "$doc has no $begin / $end markers: not updated"
  fi
fi
