#!/usr/bin/env bash
# Installs what the e2e suite and the shim's tests need, only if missing.
# Idempotent and quiet: `apt-get update` runs only when something must be installed.
set -euo pipefail

# command -> Debian package that provides it
declare -A want=(
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [valgrind]=valgrind
  [curl]=curl
  [gcc]=gcc
  [make]=make
  [python3]=python3
  # The DNS server of the edge-mode tests (tests/edge): dnsmasq-base is the binary
  # alone, without the system service that would take port 53.
  [dnsmasq]=dnsmasq-base
)

missing=()
for cmd in "${!want[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing ${missing[*]} and not root; install them with apt-get" >&2
  exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
