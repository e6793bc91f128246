#!/usr/bin/env bash
# Edge mode's cost (issue 19): small requests through edge + node against the node alone,
# in one run. Everything on loopback: an upstream (cmux-loadgen's small 200), a node
# proxy on 127.30.9.1, dnsmasq answering only `m1.machines.bench` (never forwarding), and
# an edge asking it. Reports, per setup: wrk with one connection (latency of one request
# at a time: the edge's added latency) and with BENCH_EDGE_CONNS connections (requests per
# second, and each proxy's CPU time per request from /proc/PID/stat).
#
#   bash bench/edge.sh            # after `cargo build --profile release-tests`
#   BENCH_EDGE_BIN=target/release/cmux-proxy bash bench/edge.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${BENCH_EDGE_BIN:-target/release-tests/cmux-proxy}
LOADGEN=${BENCH_LOADGEN_BIN:-target/release-tests/cmux-loadgen}
SECS=${BENCH_EDGE_SECS:-5}
CONNS=${BENCH_EDGE_CONNS:-50}
NODE_IP=127.30.9.1
for tool in wrk dnsmasq curl; do
  command -v "$tool" >/dev/null || { echo "edge.sh: $tool is missing" >&2; exit 1; }
done
[ -x "$BIN" ] || { echo "edge.sh: no binary at $BIN" >&2; exit 1; }
[ -x "$LOADGEN" ] || cargo build --profile release-tests -p cmux-loadgen >/dev/null

TMP=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # wait_port HOST PORT: up to 10 s
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "edge.sh: nothing listens on $1:$2" >&2; exit 1
}
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
latency_us() { # latency_us PCT < wrk output
  awk -v p="$1" '$1 == p {
    v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
    m = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1000000 : 0
    printf "%.1f", v * m }'
}

UP=$(free_port)
"$LOADGEN" ws-echo-server --listen "127.0.0.1:$UP" >"$TMP/up.log" 2>&1 &
PIDS+=($!)
wait_port 127.0.0.1 "$UP"

NODE_PORT=$(free_port)
cat >"$TMP/proxy.yaml" <<YAML
version: 1
threads: 1
cmux_proxy:
  machine_port: $NODE_PORT
YAML
CMUX_ACCESS_LOG=off "$BIN" --listen "$NODE_IP:$NODE_PORT" --admin-listen off \
  >"$TMP/node.log" 2>&1 &
NODE_PID=$!
PIDS+=("$NODE_PID")
wait_port "$NODE_IP" "$NODE_PORT"

DNS_PORT=$(free_port)
dnsmasq --keep-in-foreground --no-resolv --no-hosts --no-poll --conf-file=/dev/null \
  --listen-address=127.0.0.1 --bind-interfaces --user=root --port="$DNS_PORT" \
  --local=/machines.bench/ --host-record="m1.machines.bench,$NODE_IP" --local-ttl=60 \
  --pid-file="$TMP/dnsmasq.pid" >"$TMP/dns.log" 2>&1 &
PIDS+=($!)

EDGE_PORT=$(free_port)
CMUX_ACCESS_LOG=off "$BIN" -c "$TMP/proxy.yaml" --listen "127.0.0.1:$EDGE_PORT" \
  --admin-listen off --mode edge --machine-dns-suffix machines.bench \
  --dns-servers "127.0.0.1:$DNS_PORT" >"$TMP/edge.log" 2>&1 &
EDGE_PID=$!
PIDS+=("$EDGE_PID")
wait_port 127.0.0.1 "$EDGE_PORT"

NODE_URL="http://$NODE_IP:$NODE_PORT/small"
EDGE_URL="http://127.0.0.1:$EDGE_PORT/small"
for _ in $(seq 50); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Cmux-Machine-Internal: m1" \
    -H "X-Cmux-Port-Internal: $UP" "$EDGE_URL" || true)
  [ "$code" = 200 ] && break
  sleep 0.1
done
[ "$code" = 200 ] || { echo "edge.sh: the edge does not answer 200 (got $code)" >&2; exit 1; }

run() { # run NAME URL CONNS HEADERS...
  local name=$1 url=$2 conns=$3; shift 3
  local hdrs=() h
  for h in "$@"; do hdrs+=(-H "$h"); done
  wrk -t1 -c"$conns" -d1s "${hdrs[@]}" "$url" >/dev/null # warm-up
  local n0 e0 out n1 e1 reqs
  n0=$(cpu_ticks "$NODE_PID"); e0=$(cpu_ticks "$EDGE_PID")
  out=$(wrk -t1 -c"$conns" -d"${SECS}s" --latency "${hdrs[@]}" "$url")
  n1=$(cpu_ticks "$NODE_PID"); e1=$(cpu_ticks "$EDGE_PID")
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  local hz; hz=$(getconf CLK_TCK)
  printf '%-12s conns=%-3s rps=%-9s p50=%-8s p99=%-8s node_cpu_us/req=%-7s edge_cpu_us/req=%s\n' \
    "$name" "$conns" "$(awk '/^Requests\/sec/{print $2}' <<<"$out")" \
    "$(latency_us 50% <<<"$out")" "$(latency_us 99% <<<"$out")" \
    "$(awk -v a="$n0" -v b="$n1" -v n="$reqs" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')" \
    "$(awk -v a="$e0" -v b="$e1" -v n="$reqs" -v hz="$hz" 'BEGIN{printf "%.1f", (b-a)*1e6/hz/n}')"
}

echo "edge.sh: $(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ), binary $BIN, ${SECS}s per run"
run node-alone "$NODE_URL" 1 "X-Cmux-Port-Internal: $UP"
run edge+node "$EDGE_URL" 1 "X-Cmux-Machine-Internal: m1" "X-Cmux-Port-Internal: $UP"
run node-alone "$NODE_URL" "$CONNS" "X-Cmux-Port-Internal: $UP"
run edge+node "$EDGE_URL" "$CONNS" "X-Cmux-Machine-Internal: m1" "X-Cmux-Port-Internal: $UP"
