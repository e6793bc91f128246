#!/usr/bin/env bash
# Instructions per proxied small request, counted by valgrind's callgrind: cmux-proxy, bare
# pingora (bench/pingora-bare: pingora's own limit) and nginx (the same header routing,
# upstream keep-alive) in one run. Unlike the wall-clock figures of bench/run.sh, the count
# does not move with the load on the machine, so it is the figure to compare two builds,
# or cmux-proxy with bare pingora, by. Loopback only; every process it starts is ended on
# exit. Usage: bash bench/callgrind.sh
# Knobs: CG_REQUESTS, CG_WARMUP, CG_TARGETS (cmux pingora nginx), CG_CMUX_BIN,
# CG_PINGORA_BIN, CG_KEEP_TMP=1 (keep the dumps for callgrind_annotate --tree=caller),
# CG_ANNOTATE=1: the top inclusive entries of cmux-proxy and bare pingora, and, when both
# ran, the per-function difference of their inclusive costs (instructions per request)
# written to CG_DIFF_OUT (default bench/callgrind-diff.txt; CG_DIFF_TOP rows, default 60);
# CG_CMUX_YAML_EXTRA and CG_HEADER for experiments such as tokens.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REQUESTS=${CG_REQUESTS:-2000}
WARMUP=${CG_WARMUP:-300}
TARGETS=${CG_TARGETS:-"cmux pingora nginx"}
CMUX_BIN=${CG_CMUX_BIN:-target/release/cmux-proxy}
PINGORA_BIN=${CG_PINGORA_BIN:-target/release/pingora-bare}
DIFF_OUT=${CG_DIFF_OUT:-bench/callgrind-diff.txt}
DIFF_TOP=${CG_DIFF_TOP:-60}

log() { printf '[callgrind %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need=()
command -v valgrind >/dev/null || need+=(valgrind)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q "${need[@]}" >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null && apt-get install -y -q "${need[@]}" >/dev/null; }
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
# Both in one cargo invocation, so their shared dependencies get the same features (as
# bench/run.sh builds them).
if [ -z "${CG_CMUX_BIN:-}${CG_PINGORA_BIN:-}" ] &&
  [[ " $TARGETS " == *" cmux "* || " $TARGETS " == *" pingora "* ]]; then
  log "cargo build --release -p cmux-proxy -p pingora-bare"
  cargo build --release -q -p cmux-proxy -p pingora-bare
fi

TMP=$(mktemp -d /tmp/cmux-callgrind.XXXXXX)
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ "${CG_KEEP_TMP:-0}" = 1 ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Free loopback ports: bound to port 0 and read back, then released.
read -r UP P_CMUX P_NGINX P_PINGORA <<<"$(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')"

wait_port() { # wait_port PORT NAME: up to 60 s (valgrind starts slowly)
  local _
  for _ in $(seq 600); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$2 did not listen on 127.0.0.1:$1"; tail -20 "$TMP/$2.log" >&2 || true
  return 1
}

# What both nginx configs share, up to the inside of `http {`: one foreground process
# (so callgrind sees all of its work) with every file it writes in $TMP.
nginx_head() { # nginx_head NAME
  local d
  printf 'daemon off;\nmaster_process off;\nuser root;\n'
  printf 'error_log %s/%s-error.log warn;\npid %s/%s.pid;\n' "$TMP" "$1" "$TMP" "$1"
  printf 'events { worker_connections 1024; }\nhttp {\n'
  for d in client_body proxy fastcgi uwsgi scgi; do echo "  ${d}_temp_path $TMP/$1-$d;"; done
  printf '  access_log off;\n  keepalive_requests 1000000000;\n'
}

SMALL_BODY="cmux-proxy benchmark upstream: a small response body of 64 bytes.."
cat >"$TMP/upstream.conf" <<EOF
$(nginx_head upstream)
  server {
    listen 127.0.0.1:$UP;
    location = /small { default_type text/plain; return 200 "$SMALL_BODY"; }
  }
}
EOF
"$NGINX" -c "$TMP/upstream.conf" >"$TMP/upstream.log" 2>&1 &
PIDS+=($!)
wait_port "$UP" upstream

# The same routing as bench/run.sh's nginx: the port header picks a named upstream with
# keep-alive; forwarding headers as cmux-proxy sets them.
cat >"$TMP/nginx.conf" <<EOF
$(nginx_head nginx)
  map \$http_x_cmux_port_internal \$cmux_upstream { default up$UP; }
  upstream up$UP { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$P_NGINX;
    location / {
      proxy_pass http://\$cmux_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Cmux-Port-Internal "";
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
EOF
cat >"$TMP/cmux.yaml" <<EOF
version: 1
threads: 1
pid_file: $TMP/cmux.pid
upgrade_sock: $TMP/cmux-upgrade.sock
EOF
# Bare pingora reads the same pingora keys (no cmux_proxy section).
sed 's/cmux/pingora/g' "$TMP/cmux.yaml" >"$TMP/pingora.yaml"
# Experiments: more YAML for cmux-proxy (say a `cmux_proxy:` section with tokens), and
# one more header on every request (say the token).
if [ -n "${CG_CMUX_YAML_EXTRA:-}" ]; then printf '%s\n' "$CG_CMUX_YAML_EXTRA" >>"$TMP/cmux.yaml"; fi

# N requests for /small through PORT, all on one keep-alive connection (curl -K).
requests() { # requests PORT N
  local i
  {
    echo "header = \"X-Cmux-Port-Internal: $UP\""
    if [ -n "${CG_HEADER:-}" ]; then echo "header = \"$CG_HEADER\""; fi
    for ((i = 0; i < $2; i++)); do echo "url = \"http://127.0.0.1:$1/small\""; echo "output = /dev/null"; done
  } >"$TMP/curl.cfg"
  curl -s --fail -K "$TMP/curl.cfg" || die "requests through 127.0.0.1:$1 failed"
}

# Total instructions (Ir) in a callgrind dump.
total_ir() { awk '/^(summary|totals):/{print $2; exit}' "$1"; }

# As in bench/run.sh: no access log and no admin listener, like nginx here. Exported
# rather than given through env(1), which valgrind would trace instead of the proxy.
export CMUX_ACCESS_LOG=off CMUX_ADMIN_LISTEN=off
declare -A RESULT
count() { # count NAME PORT CMD...: instructions per request of CMD under callgrind
  local name=$1 port=$2 pid dump _
  shift 2
  valgrind --tool=callgrind --callgrind-out-file="$TMP/$name.cg.%p" "$@" >"$TMP/$name.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  wait_port "$port" "$name"
  requests "$port" "$WARMUP"
  callgrind_control -z "$pid" >/dev/null 2>&1
  requests "$port" "$REQUESTS"
  callgrind_control -d "$pid" >/dev/null 2>&1
  # The dump is written asynchronously; wait for its totals line (10 s at most).
  for _ in $(seq 100); do
    dump=$(ls -t "$TMP/$name.cg.$pid".* 2>/dev/null | head -1 || true)
    [ -n "$dump" ] && [ -n "$(total_ir "$dump")" ] && break
    sleep 0.1
  done
  [ -n "$dump" ] || die "no callgrind dump from $name"
  RESULT[$name]=$(($(total_ir "$dump") / REQUESTS))
  log "$name: ${RESULT[$name]} instructions per request ($REQUESTS requests, one connection)"
  if [[ $name == cmux || $name == pingora ]] && [ "${CG_ANNOTATE:-0}" = 1 ]; then
    # Every entry (threshold 100%), inclusive; the top 40 shown here, all kept for the diff.
    callgrind_annotate --inclusive=yes --threshold=100 --auto=no "$dump" 2>/dev/null >"$TMP/$name.annotate"
    log "$name: top inclusive entries (instructions over $REQUESTS requests)"
    awk '/^-+$/ {n++} n >= 3 && shown++ < 44' "$TMP/$name.annotate"
  fi
  kill -TERM "$pid" 2>/dev/null || true
}

for t in $TARGETS; do
  case $t in
    cmux) count cmux "$P_CMUX" "$CMUX_BIN" -c "$TMP/cmux.yaml" --listen "127.0.0.1:$P_CMUX" ;;
    pingora) count pingora "$P_PINGORA" "$PINGORA_BIN" --conf "$TMP/pingora.yaml" --listen "127.0.0.1:$P_PINGORA" ;;
    nginx) count nginx "$P_NGINX" "$NGINX" -c "$TMP/nginx.conf" ;;
    *) die "unknown target $t (cmux pingora nginx)" ;;
  esac
done

printf '| proxy | instructions per small request |\n|---|---:|\n'
for t in $TARGETS; do printf '| %s | %s |\n' "$t" "${RESULT[$t]}"; done

# Where cmux-proxy's instructions go beyond bare pingora's: the inclusive cost of every
# function in both profiles, per request, matched by name (bench/callgrind-diff.py).
if [ "${CG_ANNOTATE:-0}" = 1 ] && [ -s "$TMP/cmux.annotate" ] && [ -s "$TMP/pingora.annotate" ]; then
  python3 bench/callgrind-diff.py "$TMP/cmux.annotate" "$TMP/pingora.annotate" "$REQUESTS" \
    "$DIFF_TOP" "${RESULT[cmux]}" "${RESULT[pingora]}" >"$DIFF_OUT"
  log "per-function difference, cmux-proxy against bare pingora: $DIFF_OUT"
  sed -n 1,45p "$DIFF_OUT"
fi
